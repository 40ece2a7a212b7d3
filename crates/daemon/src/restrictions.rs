//! A project's `restricted` keys: which values they take, and whether an instance (its config and
//! devices expanded with its profiles) or a snapshot is allowed in a restricted project. As in
//! Incus, nothing is restricted until `restricted=true`; then every `restricted.*` key left unset
//! takes its restrictive default.

use crate::db::Project;
use serde_json::Value;

/// Every `restricted.*` key warrend knows, with the values it takes and its default.
const KEYS: &[(&str, &[&str], &str)] = &[
    ("restricted.backups", &["allow", "block"], "block"),
    (
        "restricted.containers.interception",
        &["allow", "block", "full"],
        "block",
    ),
    (
        "restricted.containers.lowlevel",
        &["allow", "block"],
        "block",
    ),
    (
        "restricted.containers.nesting",
        &["allow", "block"],
        "block",
    ),
    // ("isolated" needs security.idmap.isolated, which warrend doesn't have: refused by name)
    (
        "restricted.containers.privilege",
        &["unprivileged", "allow"],
        "unprivileged",
    ),
    (
        "restricted.devices.disk",
        &["allow", "managed", "block"],
        "managed",
    ),
    ("restricted.devices.gpu", &["allow", "block"], "block"),
    (
        "restricted.devices.infiniband",
        &["allow", "block"],
        "block",
    ),
    (
        "restricted.devices.nic",
        &["allow", "managed", "block"],
        "managed",
    ),
    ("restricted.devices.pci", &["allow", "block"], "block"),
    ("restricted.devices.proxy", &["allow", "block"], "block"),
    (
        "restricted.devices.unix-block",
        &["allow", "block"],
        "block",
    ),
    ("restricted.devices.unix-char", &["allow", "block"], "block"),
    (
        "restricted.devices.unix-hotplug",
        &["allow", "block"],
        "block",
    ),
    ("restricted.devices.usb", &["allow", "block"], "block"),
    ("restricted.snapshots", &["allow", "block"], "block"),
    (
        "restricted.virtual-machines.lowlevel",
        &["allow", "block"],
        "block",
    ),
];

/// Keys that take lists rather than one of a few words.
const LIST_KEYS: &[&str] = &[
    "restricted.devices.disk.paths",
    "restricted.networks.access",
];

/// Whether `key` is a restriction key, and if so whether `value` is good for it (the error says
/// what it takes).
pub fn check_key(key: &str, value: &str) -> Option<Result<(), String>> {
    if key == "restricted" {
        return Some(if matches!(value, "true" | "false" | "") {
            Ok(())
        } else {
            Err("true or false".into())
        });
    }
    if key == "restricted.containers.privilege" && value == "isolated" {
        return Some(Err(
            "\"isolated\" needs security.idmap.isolated, which warrend doesn't have; use unprivileged or allow".into(),
        ));
    }
    if let Some((_, values, _)) = KEYS.iter().find(|(k, _, _)| *k == key) {
        return Some(if value.is_empty() || values.contains(&value) {
            Ok(())
        } else {
            Err(format!("one of {}", values.join(", ")))
        });
    }
    if LIST_KEYS.contains(&key) {
        if key == "restricted.devices.disk.paths"
            && value
                .split(',')
                .map(str::trim)
                .any(|p| !p.is_empty() && !p.starts_with('/'))
        {
            return Some(Err("a comma-separated list of absolute host paths".into()));
        }
        return Some(Ok(()));
    }
    None
}

/// The names of the known restriction keys, for an error listing what exists.
pub fn known_keys() -> String {
    let mut names: Vec<&str> = vec!["restricted"];
    names.extend(KEYS.iter().map(|(k, _, _)| *k));
    names.extend(LIST_KEYS);
    names.join(", ")
}

/// The project's setting for `key`: its own value, else (restricted projects) the default.
fn setting<'a>(p: &'a Project, key: &str) -> &'a str {
    match p.config.get(key).and_then(Value::as_str) {
        Some(v) if !v.is_empty() => v,
        _ => KEYS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or("", |(_, _, default)| default),
    }
}

/// Whether a disk source given as `given`, really at `real`, is under one of the
/// comma-separated `allowed` paths (restricted.devices.disk.paths; empty: anywhere), as written
/// and as resolved.
fn inside_allowed(allowed: &str, given: &std::path::Path, real: &std::path::Path) -> bool {
    allowed.trim().is_empty()
        || allowed
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .any(|a| {
                let real_allowed =
                    std::fs::canonicalize(a).unwrap_or_else(|_| std::path::PathBuf::from(a));
                given.starts_with(a) && real.starts_with(real_allowed)
            })
}

fn restricted(p: &Project) -> bool {
    p.config.get("restricted").and_then(Value::as_str) == Some("true")
}

/// The error for something project `p` forbids, with the key that would allow it.
fn forbidden(p: &Project, what: &str, key: &str, allow: &str) -> String {
    format!(
        "{what} is forbidden in project \"{}\" (restricted=true; {key}={allow} allows it)",
        p.name
    )
}

/// Whether an instance with this config and these devices (both expanded with its profiles)
/// may exist in project `p`.
pub fn check_instance(p: &Project, config: &Value, devices: &Value) -> Result<(), String> {
    if !restricted(p) {
        return Ok(());
    }
    let get = |k: &str| config.get(k).and_then(Value::as_str).unwrap_or("");
    if get("security.nesting") == "true" && setting(p, "restricted.containers.nesting") == "block" {
        return Err(forbidden(
            p,
            "Container nesting (security.nesting=true)",
            "restricted.containers.nesting",
            "allow",
        ));
    }
    if get("security.privileged") == "true"
        && setting(p, "restricted.containers.privilege") != "allow"
    {
        return Err(forbidden(
            p,
            "A privileged container (security.privileged=true)",
            "restricted.containers.privilege",
            "allow",
        ));
    }
    if setting(p, "restricted.containers.lowlevel") == "block" {
        if let Some(obj) = config.as_object() {
            if let Some((key, _)) = obj
                .iter()
                .find(|(k, v)| k.starts_with("raw.") && v.as_str().is_some_and(|v| !v.is_empty()))
            {
                return Err(forbidden(
                    p,
                    &format!("The low-level key \"{key}\""),
                    "restricted.containers.lowlevel",
                    "allow",
                ));
            }
        }
    }
    let Some(devices) = devices.as_object() else {
        return Ok(());
    };
    for (name, dev) in devices {
        check_device(p, name, dev)?;
    }
    Ok(())
}

fn check_device(p: &Project, name: &str, dev: &Value) -> Result<(), String> {
    let get = |k: &str| dev.get(k).and_then(Value::as_str).unwrap_or("");
    let kind = get("type");
    let key = format!("restricted.devices.{kind}");
    match kind {
        "disk" => {
            if get("path") == "/" {
                return Ok(());
            }
            let managed = !get("pool").is_empty();
            match setting(p, &key) {
                "block" => Err(forbidden(
                    p,
                    &format!("Disk device \"{name}\""),
                    &key,
                    "managed or allow",
                )),
                "managed" if !managed => Err(forbidden(
                    p,
                    &format!("Disk device \"{name}\" with a host path (only custom volumes, pool=, are allowed)"),
                    &key,
                    "allow",
                )),
                "allow" if !managed => {
                    let allowed = p
                        .config
                        .get("restricted.devices.disk.paths")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    // where the source really is: a symlink under an allowed path may point
                    // anywhere (one that doesn't resolve is judged as written)
                    let given = std::path::Path::new(get("source"));
                    let source = std::fs::canonicalize(given).unwrap_or_else(|_| given.to_path_buf());
                    if inside_allowed(allowed, given, &source) {
                        Ok(())
                    } else {
                        Err(format!(
                            "Disk device \"{name}\": source {} is outside restricted.devices.disk.paths ({allowed}) of project \"{}\"",
                            source.display(),
                            p.name
                        ))
                    }
                }
                _ => Ok(()),
            }
        }
        "nic" => {
            let network = get("network");
            match setting(p, &key) {
                "block" => Err(forbidden(
                    p,
                    &format!("Network device \"{name}\""),
                    &key,
                    "managed or allow",
                )),
                "managed" if network.is_empty() => Err(forbidden(
                    p,
                    &format!("Network device \"{name}\" without network= (only managed networks are allowed)"),
                    &key,
                    "allow",
                )),
                _ => {
                    let access = p
                        .config
                        .get("restricted.networks.access")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let listed = access.split(',').map(str::trim).any(|n| n == network);
                    if network.is_empty() || access.trim().is_empty() || listed {
                        Ok(())
                    } else {
                        Err(format!(
                            "Network device \"{name}\": network \"{network}\" is not in restricted.networks.access ({access}) of project \"{}\"",
                            p.name
                        ))
                    }
                }
            }
        }
        "proxy" | "unix-char" | "unix-block" | "unix-hotplug" | "gpu" | "usb" | "pci"
        | "infiniband" => {
            if setting(p, &key) == "allow" {
                Ok(())
            } else {
                Err(forbidden(
                    p,
                    &format!("Device \"{name}\" of type {kind}"),
                    &key,
                    "allow",
                ))
            }
        }
        _ => Ok(()),
    }
}

/// The instance's project's restrictions once more at start: a disk's source may have become
/// a symlink leading elsewhere since it was added.
pub fn check_at_start(
    db: &crate::db::Db,
    profiles: &[crate::db::Profile],
    inst: &crate::db::Instance,
) -> Result<(), String> {
    let Some(p) = db.project(&inst.project).map_err(|e| e.to_string())? else {
        return Ok(());
    };
    check_instance(
        &p,
        &crate::instances::expanded_config(profiles, inst),
        &crate::instances::expanded_devices(profiles, inst),
    )
}

/// Right before a start, in a restricted project: the host paths of the instance's disks
/// pinned, each source rewritten in its LXC config (just written) as the real path it resolves
/// to now and mounted without following symlinks (`nofollow`), so a path swapped for a symlink
/// between the check and the mount fails the mount instead of leading out. Checked again as
/// pinned.
pub fn pin_disks(
    dir: &std::path::Path,
    p: &Project,
    inst: &crate::db::Instance,
    devices: &Value,
) -> Result<(), String> {
    if !restricted(p) {
        return Ok(());
    }
    let allowed = setting(p, "restricted.devices.disk.paths");
    for (name, given, real) in crate::instances::pin_disk_sources(dir, inst, devices)? {
        if setting(p, "restricted.devices.disk") == "allow"
            && !inside_allowed(allowed, std::path::Path::new(&given), &real)
        {
            return Err(format!(
                "Disk device \"{name}\": source {} is outside restricted.devices.disk.paths ({allowed}) of project \"{}\"",
                real.display(),
                p.name
            ));
        }
    }
    Ok(())
}

/// Whether project `p` allows snapshots (of instances and custom volumes).
pub fn check_snapshot(p: &Project) -> Result<(), String> {
    if restricted(p) && setting(p, "restricted.snapshots") == "block" {
        return Err(forbidden(p, "Snapshots", "restricted.snapshots", "allow"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nothing_is_restricted_until_restricted_is_true() {
        let p = Project::for_test(json!({"restricted.containers.nesting": "block"}));
        let config = json!({"security.nesting": "true", "security.privileged": "true"});
        assert!(check_instance(&p, &config, &json!({})).is_ok());
        assert!(check_snapshot(&p).is_ok());
    }

    #[test]
    fn a_restricted_project_takes_the_restrictive_defaults() {
        let p = Project::for_test(json!({"restricted": "true"}));
        for config in [
            json!({"security.nesting": "true"}),
            json!({"security.privileged": "true"}),
            json!({"raw.lxc": "lxc.apparmor.profile = unconfined"}),
        ] {
            let err = check_instance(&p, &config, &json!({})).unwrap_err();
            assert!(err.contains("restricted=true"), "{err}");
        }
        let root = json!({"root": {"type": "disk", "path": "/", "pool": "default"}});
        assert!(check_instance(&p, &json!({}), &root).is_ok());
        for devices in [
            json!({"d": {"type": "disk", "path": "/mnt", "source": "/srv"}}),
            json!({"n": {"type": "nic", "nictype": "bridged", "parent": "br0"}}),
            json!({"x": {"type": "proxy", "listen": "tcp:127.0.0.1:80", "connect": "tcp:127.0.0.1:80"}}),
            json!({"c": {"type": "unix-char", "path": "/dev/null"}}),
        ] {
            assert!(
                check_instance(&p, &json!({}), &devices).is_err(),
                "{devices}"
            );
        }
        let managed = json!({
            "v": {"type": "disk", "path": "/data", "pool": "default", "source": "vol"},
            "eth0": {"type": "nic", "network": "warrenbr0"}
        });
        assert!(check_instance(&p, &json!({}), &managed).is_ok());
        assert!(check_snapshot(&p).is_err());
    }

    #[test]
    fn allow_settings_open_what_they_name() {
        let p = Project::for_test(json!({
            "restricted": "true",
            "restricted.containers.nesting": "allow",
            "restricted.containers.privilege": "allow",
            "restricted.devices.disk": "allow",
            "restricted.devices.disk.paths": "/srv/shared",
            "restricted.networks.access": "warrenbr0",
            "restricted.snapshots": "allow"
        }));
        let config = json!({"security.nesting": "true", "security.privileged": "true"});
        assert!(check_instance(&p, &config, &json!({})).is_ok());
        let inside = json!({"d": {"type": "disk", "path": "/mnt", "source": "/srv/shared/a"}});
        assert!(check_instance(&p, &json!({}), &inside).is_ok());
        let outside = json!({"d": {"type": "disk", "path": "/mnt", "source": "/etc"}});
        assert!(check_instance(&p, &json!({}), &outside).is_err());
        // a symlink inside an allowed path that leads out of it
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("out")).unwrap();
        let allowed = dir.path().display().to_string();
        let q = Project::for_test(json!({
            "restricted": "true",
            "restricted.devices.disk": "allow",
            "restricted.devices.disk.paths": allowed
        }));
        let link = json!({"d": {"type": "disk", "path": "/mnt",
            "source": dir.path().join("out").display().to_string()}});
        assert!(check_instance(&q, &json!({}), &link).is_err());
        let other_net = json!({"eth0": {"type": "nic", "network": "other"}});
        assert!(check_instance(&p, &json!({}), &other_net).is_err());
        assert!(check_snapshot(&p).is_ok());
    }

    #[test]
    fn values_are_checked() {
        assert!(check_key("restricted", "yes").is_some_and(|r| r.is_err()));
        assert!(check_key("restricted.containers.nesting", "allow").is_some_and(|r| r.is_ok()));
        assert!(check_key("restricted.containers.nesting", "maybe").is_some_and(|r| r.is_err()));
        assert!(
            check_key("restricted.containers.privilege", "isolated").is_some_and(|r| r.is_err())
        );
        assert!(check_key("restricted.devices.disk.paths", "srv").is_some_and(|r| r.is_err()));
        assert!(check_key("limits.memory", "1GiB").is_none());
    }
}
