//! Projects (`/1.0/projects`): which project a request works in (`?project=`), and the projects'
//! own endpoints: create, show, edit, rename and delete (empty ones), state.

use crate::api::{self, ApiError};
use crate::db::{Db, Project};
use crate::http::{Request, Response};
use crate::routes::{internal, json_body, recursion};
use crate::Daemon;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The features a new project has on unless its config says otherwise (as Incus).
const FEATURES_ON: &[&str] = &[
    "features.images",
    "features.profiles",
    "features.storage.volumes",
    "features.storage.buckets",
];

/// The project a request works in: `?project=`, default if none; an unknown one is a 404.
pub fn of_request(d: &Daemon, req: &Request) -> Result<Project, ApiError> {
    let name = req
        .query("project")
        .filter(|p| !p.is_empty())
        .unwrap_or("default");
    named(d, name)
}

/// Project `name`; an unknown one is a 404.
pub fn named(d: &Daemon, name: &str) -> Result<Project, ApiError> {
    d.db()
        .project(name)
        .map_err(internal)?
        .ok_or_else(|| ApiError::not_found(format!("Project \"{name}\" not found")))
}

/// Refuses a project name Incus refuses (an instance's storage name is `<project>_<name>`, so
/// no `_`), and any that isn't plain ASCII letters, digits, '-' and '.': it becomes part of
/// directory, container and cgroup names.
fn check_name(name: &str) -> Result<(), ApiError> {
    let why = if name.is_empty() {
        "No name provided"
    } else if name.contains('/') {
        "Project names may not contain slashes"
    } else if name.contains(' ') {
        "Project names may not contain spaces"
    } else if name.contains('_') {
        "Project names may not contain underscores"
    } else if name.contains(['\'', '"']) {
        "Project names may not contain quotes"
    } else if name == "*" || name == "." || name == ".." {
        "Reserved project name"
    } else if name.len() > 63
        || name.starts_with(['-', '.'])
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        "Project names are ASCII letters, digits, '-' and '.' (at most 63, not starting with '-' or '.')"
    } else {
        return Ok(());
    };
    Err(ApiError::bad_request(format!(
        "Invalid project name \"{name}\": {why}"
    )))
}

/// Checks a project's config: the features warrend has, the instance limits, `user.*`. The
/// default project has every feature (networks too).
fn check_config(config: &Value, is_default: bool) -> Result<(), ApiError> {
    let Some(map) = config.as_object() else {
        return Err(ApiError::bad_request("config must be an object of strings"));
    };
    for (key, value) in map {
        let Some(value) = value.as_str() else {
            return Err(ApiError::bad_request(format!(
                "Invalid project config key \"{key}\": the value must be a string"
            )));
        };
        let bad = |why: &str| {
            Err(ApiError::bad_request(format!(
                "Invalid value \"{value}\" for project config key \"{key}\": {why}"
            )))
        };
        match key.as_str() {
            "features.images" | "features.profiles" | "features.storage.volumes"
            | "features.storage.buckets" => {
                if !matches!(value, "true" | "false") {
                    return bad("true or false");
                }
            }
            "features.networks" | "features.networks.zones" => {
                if value == "true" && !is_default {
                    return bad("warrend's managed networks (bridges) live in the default project, which other projects use");
                }
                if !matches!(value, "true" | "false") {
                    return bad("true or false");
                }
            }
            "limits.instances" | "limits.containers" | "limits.virtual-machines" => {
                if value.parse::<u64>().is_err() {
                    return bad("a number of instances (0 or more)");
                }
            }
            k if k.starts_with("user.") => {}
            k => match crate::quotas::check_key(k, value)
                .or_else(|| crate::restrictions::check_key(k, value))
            {
                Some(Ok(())) => {}
                Some(Err(why)) => return bad(&why),
                None => {
                    return Err(ApiError::bad_request(format!(
                        "Unknown project config key \"{key}\" (warrend has features.images, features.profiles, features.storage.volumes, features.storage.buckets, features.networks=false, limits.instances, limits.containers, limits.virtual-machines, limits.memory, limits.cpu, limits.processes, user.* and {})",
                        crate::restrictions::known_keys()
                    )))
                }
            },
        }
    }
    Ok(())
}

/// The project's instances as they are must stay allowed under its new `config` (tightened
/// restrictions are refused while an instance uses what they forbid).
fn check_instances_allowed(db: &Db, p: &Project, config: &Value) -> Result<(), ApiError> {
    let future = Project {
        config: config.clone(),
        ..p.clone()
    };
    let profiles = db.all_profiles().map_err(internal)?;
    let mut configs = Vec::new();
    for inst in db.instances().map_err(internal)? {
        if inst.project != p.name {
            continue;
        }
        let expanded = (
            crate::instances::expanded_config(&profiles, &inst),
            crate::instances::expanded_devices(&profiles, &inst),
        );
        crate::restrictions::check_instance(&future, &expanded.0, &expanded.1).map_err(|e| {
            ApiError::bad_request(format!(
                "Instance \"{}\" doesn't comply with the new restrictions: {e}",
                inst.api_name()
            ))
        })?;
        configs.push((inst.api_name().to_string(), expanded.0));
    }
    crate::quotas::check(&future, &configs).map_err(ApiError::bad_request)
}

/// What stands in project `p`, as API paths: its instances, and its own profiles, images and
/// custom volumes.
fn used_by(db: &Db, p: &Project) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = db
        .instances()
        .map_err(internal)?
        .iter()
        .filter(|i| i.project == p.name)
        .map(|i| i.url())
        .collect();
    if p.profiles_project() == p.name {
        out.extend(
            db.profiles(&p.name)
                .map_err(internal)?
                .iter()
                .map(|x| p.url(&format!("/1.0/profiles/{}", x.name))),
        );
    }
    if p.images_project() == p.name {
        out.extend(
            db.images(&p.name)
                .map_err(internal)?
                .iter()
                .map(|i| p.url(&format!("/1.0/images/{}", i.fingerprint))),
        );
    }
    if p.volumes_project() == p.name {
        for pool in db.pools().map_err(internal)? {
            out.extend(
                db.volumes(&pool.name)
                    .map_err(internal)?
                    .iter()
                    .filter(|v| v.project == p.name)
                    .map(|v| {
                        p.url(&format!(
                            "/1.0/storage-pools/{}/volumes/custom/{}",
                            pool.name, v.name
                        ))
                    }),
            );
        }
    }
    Ok(out)
}

/// Empty: nothing but its own default profile in it.
fn is_empty(db: &Db, p: &Project) -> Result<bool, ApiError> {
    let default_profile = p.url("/1.0/profiles/default");
    Ok(used_by(db, p)?.iter().all(|u| *u == default_profile))
}

fn project_json(db: &Db, p: &Project) -> Result<Value, ApiError> {
    Ok(
        json!({"name": p.name, "description": p.description, "config": p.config,
              "used_by": used_by(db, p)?}),
    )
}

/// The ETag of what PUT can change.
fn etag(p: &Project) -> String {
    api::etag(&json!({"description": p.description, "config": p.config}))
}

/// Refuses a new instance in `p` beyond its `limits.instances` / `limits.containers`.
pub fn check_instance_limit(db: &Db, p: &Project) -> Result<(), ApiError> {
    let count = db
        .instances()
        .map_err(internal)?
        .iter()
        .filter(|i| i.project == p.name)
        .count() as u64;
    for key in ["limits.instances", "limits.containers"] {
        let limit = p
            .config
            .get(key)
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(limit) = limit.filter(|l| count >= *l) {
            return Err(ApiError::bad_request(format!(
                "Reached maximum number of instances in project \"{}\" ({key} is {limit}); delete one, or raise it with: warren project set {} {key}=N",
                p.name, p.name
            )));
        }
    }
    Ok(())
}

/// `/1.0/projects[/<name>[/state]]`.
pub fn handle(d: &Arc<Daemon>, req: &Request, rest: &[&str]) -> Result<Response, ApiError> {
    match (req.method.as_str(), rest) {
        ("GET", []) => {
            let db = d.db();
            let mut list = db.projects().map_err(internal)?;
            // a restricted client sees its own projects only
            if let crate::https::Scope::Projects(allowed) = req.peer.scope() {
                list.retain(|p| allowed.contains(&p.name));
            }
            if recursion(req) == 0 {
                return Ok(api::sync(json!(list
                    .iter()
                    .map(|p| format!("/1.0/projects/{}", p.name))
                    .collect::<Vec<_>>())));
            }
            let mut out = Vec::new();
            for p in &list {
                out.push(project_json(&db, p)?);
            }
            Ok(api::sync(json!(out)))
        }
        ("POST", []) => {
            let body = json_body(req)?;
            let name = api::text(&body, "name");
            check_name(&name)?;
            let mut config = crate::routes::object_or_empty(body.get("config"))?;
            check_config(&config, false)?;
            if let Some(c) = config.as_object_mut() {
                for f in FEATURES_ON {
                    c.entry(*f).or_insert_with(|| json!("true"));
                }
            }
            let p = Project {
                name: name.clone(),
                description: api::text(&body, "description"),
                config,
            };
            let db = d.db();
            if db.project(&name).map_err(internal)?.is_some() {
                return Err(ApiError::new(
                    409,
                    format!("Project \"{name}\" already exists"),
                ));
            }
            db.add_project(&p).map_err(internal)?;
            drop(db);
            d.hub.lifecycle(
                "project-created",
                &format!("/1.0/projects/{name}"),
                json!({}),
            );
            Ok(api::sync_with(
                201,
                Value::Null,
                vec![("Location".into(), format!("/1.0/projects/{name}"))],
            ))
        }
        (m, [name, rest @ ..]) => {
            let db = d.db();
            let p = db
                .project(name)
                .map_err(internal)?
                .ok_or_else(|| ApiError::not_found(format!("Project \"{name}\" not found")))?;
            match (m, rest) {
                ("GET", []) => Ok(api::sync_with(
                    200,
                    project_json(&db, &p)?,
                    vec![("ETag".into(), format!("\"{}\"", etag(&p)))],
                )),
                ("GET", ["state"]) => state(&db, &p),
                ("PUT", []) | ("PATCH", []) => {
                    if let Some(tag) = req.header("if-match") {
                        if tag.trim_matches('"') != etag(&p) {
                            return Err(ApiError::new(
                                412,
                                "ETag doesn't match: the project changed since it was read",
                            ));
                        }
                    }
                    let body = json_body(req)?;
                    let patch = m == "PATCH";
                    let config = crate::routes::merge(patch, &p.config, body.get("config"))?;
                    check_config(&config, p.name == "default")?;
                    check_instances_allowed(&db, &p, &config)?;
                    let feature = |c: &Value, k: &str| {
                        c.get(k)
                            .and_then(Value::as_str)
                            .unwrap_or("false")
                            .to_string()
                    };
                    let features_changed = FEATURES_ON
                        .iter()
                        .chain(&["features.networks"])
                        .any(|k| feature(&p.config, k) != feature(&config, k));
                    if features_changed && p.name == "default" {
                        return Err(ApiError::bad_request(
                            "The default project's features can't be changed",
                        ));
                    }
                    if features_changed && !is_empty(&db, &p)? {
                        return Err(ApiError::bad_request(format!(
                            "Features can only be changed on empty projects: project \"{}\" is used by {}",
                            p.name,
                            used_by(&db, &p)?.join(", ")
                        )));
                    }
                    let new = Project {
                        name: p.name.clone(),
                        description: body
                            .get("description")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .unwrap_or(if patch {
                                p.description.clone()
                            } else {
                                String::new()
                            }),
                        config,
                    };
                    db.put_project(&new).map_err(internal)?;
                    // its own profiles now, or no longer
                    if features_changed {
                        let own = new.profiles_project() == new.name;
                        let has = db.profile_exists(&new.name, "default").map_err(internal)?;
                        if own && !has {
                            db.put_profile(&crate::db::Profile {
                                project: new.name.clone(),
                                name: "default".into(),
                                description: format!(
                                    "Default warren profile for project {}",
                                    new.name
                                ),
                                config: json!({}),
                                devices: json!({}),
                            })
                            .map_err(internal)?;
                        } else if !own && has {
                            db.delete_profile(&new.name, "default").map_err(internal)?;
                        }
                    }
                    drop(db);
                    d.hub.lifecycle(
                        "project-updated",
                        &format!("/1.0/projects/{name}"),
                        json!({}),
                    );
                    Ok(api::sync(Value::Null))
                }
                ("POST", []) => {
                    let body = json_body(req)?;
                    let new = api::text(&body, "name");
                    if p.name == "default" {
                        return Err(ApiError::forbidden(
                            "The \"default\" project cannot be renamed",
                        ));
                    }
                    check_name(&new)?;
                    if db.project(&new).map_err(internal)?.is_some() {
                        return Err(ApiError::new(
                            409,
                            format!("Project \"{new}\" already exists"),
                        ));
                    }
                    if !is_empty(&db, &p)? {
                        return Err(ApiError::bad_request(format!(
                            "Only empty projects can be renamed: project \"{}\" is used by {}",
                            p.name,
                            used_by(&db, &p)?.join(", ")
                        )));
                    }
                    drop(db);
                    // an operation, as in Incus (checked above, so it fails only on the DB)
                    let dd = d.clone();
                    let op = d.hub.run("Renaming project", json!({}), move || {
                        let db = dd.db();
                        // still empty: nothing was made in it meanwhile
                        if !is_empty(&db, &p).map_err(|e| e.message)? {
                            return Err(format!("Project \"{}\" is no longer empty", p.name));
                        }
                        db.rename_project(&p.name, &new)
                            .map_err(|e| e.to_string())?;
                        drop(db);
                        dd.hub.lifecycle(
                            "project-renamed",
                            &format!("/1.0/projects/{new}"),
                            json!({"old_name": p.name}),
                        );
                        Ok(Value::Null)
                    });
                    Ok(api::async_op(&op))
                }
                ("DELETE", []) => {
                    if p.name == "default" {
                        return Err(ApiError::forbidden(
                            "The \"default\" project cannot be deleted",
                        ));
                    }
                    if !is_empty(&db, &p)? {
                        return Err(ApiError::bad_request(format!(
                            "Only empty projects can be removed: project \"{}\" is used by {}",
                            p.name,
                            used_by(&db, &p)?.join(", ")
                        )));
                    }
                    db.delete_project(&p.name).map_err(internal)?;
                    drop(db);
                    d.hub.lifecycle(
                        "project-deleted",
                        &format!("/1.0/projects/{name}"),
                        json!({}),
                    );
                    Ok(api::sync(Value::Null))
                }
                _ => Err(ApiError::not_found("not found")),
            }
        }
        _ => Err(ApiError::not_found("not found")),
    }
}

/// `GET /1.0/projects/<name>/state`: what its instances use against its limits (-1: none).
fn state(db: &Db, p: &Project) -> Result<Response, ApiError> {
    let count = db
        .instances()
        .map_err(internal)?
        .iter()
        .filter(|i| i.project == p.name)
        .count();
    let limit = |k: &str| {
        p.config
            .get(k)
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(-1)
    };
    let mut resources = Map::new();
    for (what, usage, key) in [
        ("instances", count, "limits.instances"),
        ("containers", count, "limits.containers"),
        ("virtual-machines", 0, "limits.virtual-machines"),
    ] {
        resources.insert(what.into(), json!({"limit": limit(key), "usage": usage}));
    }
    // the aggregate limits: what the instances set, expanded with their profiles
    let profiles = db.all_profiles().map_err(internal)?;
    let configs: Vec<Value> = db
        .instances()
        .map_err(internal)?
        .iter()
        .filter(|i| i.project == p.name)
        .map(|i| crate::instances::expanded_config(&profiles, i))
        .collect();
    for (what, key) in [
        ("cpu", "limits.cpu"),
        ("memory", "limits.memory"),
        ("processes", "limits.processes"),
    ] {
        let max = crate::quotas::limit(p, key).map_or(-1, |n| n.min(i64::MAX as u64) as i64);
        let used = crate::quotas::usage(key, &configs);
        resources.insert(what.into(), json!({"limit": max, "usage": used}));
    }
    for what in ["disk", "networks"] {
        resources.insert(what.into(), json!({"limit": -1, "usage": 0}));
    }
    Ok(api::sync(json!({"resources": resources})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_as_incus_takes_them() {
        assert!(check_name("p1").is_ok());
        assert!(check_name("team-a.dev").is_ok());
        for bad in [
            "", "a_b", "a/b", "a b", "a'b", "*", "..", "a?b", ".x", "-x", "é", "a%2fb",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn project_config_keys_are_checked() {
        assert!(check_config(
            &json!({"features.profiles": "false", "limits.instances": "3", "user.x": "y"}),
            false
        )
        .is_ok());
        assert!(check_config(&json!({"features.networks": "true", "user.x": "y"}), true).is_ok());
        assert!(check_config(
            &json!({"restricted": "true", "restricted.devices.nic": "allow"}),
            false
        )
        .is_ok());
        for bad in [
            json!({"features.images": "maybe"}),
            json!({"features.networks": "true"}),
            json!({"limits.instances": "-1"}),
            json!({"limits.memory": "lots"}),
            json!({"restricted": "yes"}),
            json!({"restricted.devices.usb": "managed"}),
            json!({"restricted.storage.pools": "x"}),
            json!({"features.images": true}),
        ] {
            assert!(check_config(&bad, false).is_err(), "{bad}");
        }
    }
}
