//! `/1.0/storage-pools/<pool>/volumes[/<type>[/<name>]]`: the volumes of a dir pool. Container
//! volumes are the instances' rootfs (listed, not managed here); custom volumes are directories
//! `<pool source>/custom/<name>` that disk devices (`pool=`, `source=`) bind into containers,
//! shifted through an idmapped mount for unprivileged ones, as Incus does.

use crate::api::{self, ApiError};
use crate::db::{Db, Instance, Pool, Profile, Volume};
use crate::http::{Request, Response};
use crate::{instances, Daemon};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(500, e.to_string())
}

fn pool_of(db: &Db, name: &str) -> Result<Pool, ApiError> {
    db.pools()
        .map_err(internal)?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::not_found("Storage pool not found"))
}

/// Where a custom volume's files are: under the pool's directory in `$WARREN_DIR/storage-pools`
/// (a symlink to the pool's `source` when that is elsewhere, as Incus has it).
/// Outside the default project its directory is `<project>_<name>`, as Incus names it.
pub fn volume_path(dir: &Path, pool: &str, project: &str, name: &str) -> PathBuf {
    dir.join("storage-pools")
        .join(pool)
        .join("custom")
        .join(crate::db::storage_name(project, name))
}

/// A disk device's custom volume must exist.
pub fn check_custom_volume(db: &Db, pool: &str, project: &str, name: &str) -> Result<(), String> {
    pool_of(db, pool).map_err(|e| e.message)?;
    if !db
        .volumes(pool)
        .map_err(|e| e.to_string())?
        .iter()
        .any(|v| v.name == name && v.project == project)
    {
        return Err(format!(
            "storage volume \"{name}\" doesn't exist in pool \"{pool}\""
        ));
    }
    Ok(())
}

/// Instances and profiles whose disks use custom volume `v`: those of the projects whose
/// volumes are `v.project`'s.
fn users(db: &Db, v: &Volume) -> Result<Vec<String>, ApiError> {
    let (pool, name) = (v.pool.as_str(), v.name.as_str());
    let sharing: Vec<String> = db
        .projects()
        .map_err(internal)?
        .into_iter()
        .filter(|p| p.volumes_project() == v.project)
        .map(|p| p.name)
        .collect();
    let uses = |devices: &Value| {
        devices.as_object().is_some_and(|m| {
            m.values().any(|d| {
                d.get("type").and_then(Value::as_str) == Some("disk")
                    && d.get("pool").and_then(Value::as_str) == Some(pool)
                    && d.get("source").and_then(Value::as_str) == Some(name)
            })
        })
    };
    let mut out: Vec<String> = db
        .instances()
        .map_err(internal)?
        .iter()
        .filter(|i| sharing.contains(&i.project) && uses(&i.devices))
        .map(|i| i.url())
        .collect();
    out.extend(
        db.all_profiles()
            .map_err(internal)?
            .iter()
            .filter(|p| sharing.contains(&p.project) && uses(&p.devices))
            .map(|p| crate::db::project_url(&p.project, &format!("/1.0/profiles/{}", p.name))),
    );
    Ok(out)
}

fn custom_json(db: &Db, v: &Volume) -> Result<Value, ApiError> {
    Ok(
        json!({"name": v.name, "type": "custom", "content_type": "filesystem", "config": v.config,
              "description": v.description, "location": "none", "project": v.project,
              "created_at": v.created_at, "used_by": users(db, v)?}),
    )
}

fn container_json(i: &Instance) -> Value {
    json!({"name": i.api_name(), "type": "container", "content_type": "filesystem",
           "config": {}, "description": "", "location": "none", "project": i.project,
           "created_at": i.created_at, "used_by": [i.url()]})
}

/// The pool of an instance's root disk (its own device, else its profiles').
pub fn root_pool(profiles: &[Profile], i: &Instance) -> Option<String> {
    let devices = instances::expanded_devices(profiles, i);
    devices.as_object()?.values().find_map(|dev| {
        (dev.get("type").and_then(Value::as_str) == Some("disk")
            && dev.get("path").and_then(Value::as_str) == Some("/"))
        .then(|| dev.get("pool").and_then(Value::as_str).map(str::to_string))?
    })
}

/// Custom volume config keys warren has on a dir pool.
fn check_config(config: &Value) -> Result<(), ApiError> {
    let Some(m) = config.as_object() else {
        return Err(ApiError::bad_request("config must be an object"));
    };
    for (k, v) in m {
        let Some(v) = v.as_str() else {
            return Err(ApiError::bad_request(format!(
                "Invalid config: {k}: values are strings"
            )));
        };
        let ok = if k.starts_with("user.") {
            true
        } else if k == "security.shifted" || k == "security.unmapped" {
            matches!(v, "true" | "false" | "")
        } else {
            return Err(ApiError::bad_request(format!(
                "Invalid config: Unknown configuration key: {k} (a dir volume has user.*, security.shifted, security.unmapped)"
            )));
        };
        if !ok {
            return Err(ApiError::bad_request(format!(
                "Invalid config: Invalid value for {k}: {v}"
            )));
        }
    }
    Ok(())
}

fn body_json(req: &Request) -> Result<Value, ApiError> {
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON in the request body: {e}")))
}

fn object(v: Option<&Value>) -> Result<Value, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::Object(_)) => Ok(v.cloned().unwrap_or_default()),
        Some(_) => Err(ApiError::bad_request("config must be an object")),
    }
}

pub fn handle(
    d: &Arc<Daemon>,
    req: &Request,
    proj: &crate::db::Project,
    pool_name: &str,
    rest: &[&str],
) -> Result<Response, ApiError> {
    let m = req.method.as_str();
    let all_projects = req.query("all-projects") == Some("true");
    let vp = proj.volumes_project();
    let recursion = req.query("recursion").unwrap_or("0") != "0";
    let db = d.db();
    let pool = pool_of(&db, pool_name)?;
    match (m, rest) {
        ("GET", []) | ("GET", ["custom"]) | ("GET", ["container"]) => {
            let kind = rest.first().copied();
            let mut out = Vec::new();
            if kind != Some("custom") {
                let profiles = db.all_profiles().map_err(internal)?;
                for i in db.instances().map_err(internal)? {
                    if (all_projects || i.project == proj.name)
                        && root_pool(&profiles, &i).as_deref() == Some(pool_name)
                    {
                        out.push(container_json(&i));
                    }
                }
            }
            if kind != Some("container") {
                for v in db.volumes(pool_name).map_err(internal)? {
                    if all_projects || v.project == vp {
                        out.push(custom_json(&db, &v)?);
                    }
                }
            }
            Ok(api::sync(if recursion {
                json!(out)
            } else {
                json!(out
                    .iter()
                    .map(|v| crate::db::project_url(
                        v["project"].as_str().unwrap_or("default"),
                        &format!(
                            "/1.0/storage-pools/{pool_name}/volumes/{}/{}",
                            v["type"].as_str().unwrap_or(""),
                            v["name"].as_str().unwrap_or("")
                        )
                    ))
                    .collect::<Vec<_>>())
            }))
        }
        ("POST", []) | ("POST", ["custom"]) => {
            let body = body_json(req)?;
            let name = body.get("name").and_then(Value::as_str).unwrap_or("");
            crate::routes::check_name(name, "storage volume")?;
            match body.get("type").and_then(Value::as_str).unwrap_or("custom") {
                "custom" => {}
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Storage volumes of type \"{other}\" can't be created here (custom only)"
                    )))
                }
            }
            match body
                .get("content_type")
                .and_then(Value::as_str)
                .unwrap_or("filesystem")
            {
                "filesystem" => {}
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Content type \"{other}\" is not supported on a dir pool (filesystem)"
                    )))
                }
            }
            let config = object(body.get("config"))?;
            check_config(&config)?;
            if db
                .volumes(pool_name)
                .map_err(internal)?
                .iter()
                .any(|v| v.name == name && v.project == vp)
            {
                return Err(ApiError::new(
                    409,
                    format!("Storage volume \"{name}\" already exists"),
                ));
            }
            let path = volume_path(&d.dir, pool_name, vp, name);
            // `<project>_<name>` of another project's volume
            if path.exists() {
                return Err(ApiError::new(
                    409,
                    format!("Storage volume \"{name}\" already exists on disk ({}): choose another name", path.display()),
                ));
            }
            std::fs::create_dir_all(&path)
                .map_err(|e| internal(format!("{}: {e}", path.display())))?;
            let v = Volume {
                pool: pool_name.to_string(),
                project: vp.to_string(),
                name: name.to_string(),
                description: api::text(&body, "description"),
                config,
                created_at: crate::time::now(),
            };
            if let Err(e) = db.add_volume(&v) {
                let _ = std::fs::remove_dir(&path);
                return Err(internal(e));
            }
            d.hub.lifecycle(
                "storage-volume-created",
                &proj.url(&format!(
                    "/1.0/storage-pools/{pool_name}/volumes/custom/{name}"
                )),
                json!({"type": "custom"}),
            );
            Ok(api::sync_with(
                201,
                Value::Null,
                vec![(
                    "Location".into(),
                    proj.url(&format!(
                        "/1.0/storage-pools/{pool_name}/volumes/custom/{name}"
                    )),
                )],
            ))
        }
        (_, ["container", name]) if m == "GET" => {
            let profiles = db.all_profiles().map_err(internal)?;
            let i = db
                .instance(&proj.key(name))
                .map_err(internal)?
                .filter(|i| i.project == proj.name)
                .filter(|i| root_pool(&profiles, i).as_deref() == Some(pool_name))
                .ok_or_else(|| ApiError::not_found("Storage volume not found"))?;
            Ok(api::sync_etag(container_json(&i)))
        }
        (_, ["custom", name]) => {
            let v = db
                .volumes(pool_name)
                .map_err(internal)?
                .into_iter()
                .find(|v| v.name == *name && v.project == vp)
                .ok_or_else(|| ApiError::not_found("Storage volume not found"))?;
            custom_volume(d, &db, req, &pool, v)
        }
        _ => Err(ApiError::not_found("not found")),
    }
}

/// GET, PUT/PATCH, POST (rename) and DELETE of one custom volume.
fn custom_volume(
    d: &Arc<Daemon>,
    db: &Db,
    req: &Request,
    pool: &Pool,
    v: Volume,
) -> Result<Response, ApiError> {
    let url = crate::db::project_url(
        &v.project,
        &format!("/1.0/storage-pools/{}/volumes/custom/{}", pool.name, v.name),
    );
    match req.method.as_str() {
        "GET" => {
            let tag = api::etag(&json!({"config": v.config, "description": v.description}));
            Ok(api::sync_with(
                200,
                custom_json(db, &v)?,
                vec![("ETag".into(), format!("\"{tag}\""))],
            ))
        }
        "PUT" | "PATCH" => {
            let body = body_json(req)?;
            let mut new = v.clone();
            let given = object(body.get("config"))?;
            new.config = if req.method == "PATCH" {
                let mut merged: Map<String, Value> =
                    v.config.as_object().cloned().unwrap_or_default();
                merged.extend(given.as_object().cloned().unwrap_or_default());
                Value::Object(merged)
            } else {
                given
            };
            check_config(&new.config)?;
            if let Some(desc) = body.get("description").and_then(Value::as_str) {
                new.description = desc.to_string();
            }
            db.update_volume(&new).map_err(internal)?;
            d.hub
                .lifecycle("storage-volume-updated", &url, json!({"type": "custom"}));
            Ok(api::sync(Value::Null))
        }
        "POST" => {
            let body = body_json(req)?;
            if body
                .get("pool")
                .and_then(Value::as_str)
                .is_some_and(|p| p != pool.name)
                || body.get("migration").and_then(Value::as_bool) == Some(true)
            {
                return Err(ApiError::bad_request(
                    "Moving volumes between pools or servers is not supported",
                ));
            }
            if body
                .get("project")
                .and_then(Value::as_str)
                .is_some_and(|p| !p.is_empty() && p != v.project)
            {
                return Err(ApiError::bad_request(
                    "Moving volumes between projects is not supported: copy its files into a volume of the other project",
                ));
            }
            let new = body.get("name").and_then(Value::as_str).unwrap_or("");
            crate::routes::check_name(new, "storage volume")?;
            if db
                .volumes(&pool.name)
                .map_err(internal)?
                .iter()
                .any(|x| x.name == new && x.project == v.project)
            {
                return Err(ApiError::new(
                    409,
                    format!("Storage volume \"{new}\" already exists"),
                ));
            }
            let used = users(db, &v)?;
            if !used.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "The storage volume is in use by: {}",
                    used.join(", ")
                )));
            }
            let (from, to) = (
                volume_path(&d.dir, &pool.name, &v.project, &v.name),
                volume_path(&d.dir, &pool.name, &v.project, new),
            );
            if to.exists() {
                return Err(ApiError::new(
                    409,
                    format!("{} already exists: choose another name", to.display()),
                ));
            }
            std::fs::rename(&from, &to).map_err(|e| internal(format!("rename: {e}")))?;
            if let Err(e) = db.rename_volume(&v, new) {
                let _ = std::fs::rename(&to, &from);
                return Err(internal(e));
            }
            Ok(api::sync_with(
                201,
                Value::Null,
                vec![(
                    "Location".into(),
                    crate::db::project_url(
                        &v.project,
                        &format!("/1.0/storage-pools/{}/volumes/custom/{new}", pool.name),
                    ),
                )],
            ))
        }
        "DELETE" => {
            let used = users(db, &v)?;
            if !used.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "The storage volume is still in use by: {}",
                    used.join(", ")
                )));
            }
            db.delete_volume(&v).map_err(internal)?;
            let _ = std::fs::remove_dir_all(volume_path(&d.dir, &pool.name, &v.project, &v.name));
            d.hub
                .lifecycle("storage-volume-deleted", &url, json!({"type": "custom"}));
            Ok(api::sync(Value::Null))
        }
        _ => Err(ApiError::new(405, "method not allowed")),
    }
}
