//! Changes to a running instance that take effect at once, as in Incus: devices added, changed
//! or removed (disks as bind mounts, unix-char/unix-block nodes, nics as a veth pair on the
//! bridge whose peer moves into the container), and limits (`limits.memory`, `limits.cpu`,
//! `limits.processes`) written to its cgroup. All or nothing: a failure undoes the rest.

use serde_json::Value;
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::db::{Instance, Profile};
use crate::instances::{self, expanded_devices, nic_hwaddr};

/// An instance with the profiles its devices expand with.
pub type Side<'a> = (&'a [Profile], &'a Instance);

/// Applies the device changes from `old` to `new` (an instance edited, or its profiles) to the
/// running instance (nothing when it is stopped: its config is written at start). On failure
/// nothing is left changed.
pub fn apply(dir: &Path, old: Side, new: Side) -> Result<(), String> {
    if instances::state(dir, &new.1.name) != "RUNNING" {
        return Ok(());
    }
    instances::hotplug_disks(dir, old, new)?;
    if let Err(e) = instances::hotplug_unix_devices(dir, old, new) {
        let _ = instances::hotplug_disks(dir, new, old);
        return Err(e);
    }
    if let Err(e) = nics(dir, old, new) {
        let _ = instances::hotplug_unix_devices(dir, new, old);
        let _ = instances::hotplug_disks(dir, new, old);
        return Err(e);
    }
    Ok(())
}

/// Writes the limits that differ between `old` and `new` expanded configs to the running
/// instance's cgroup (`warren-lxc cgroup`); a limit removed goes back to none. On failure the
/// ones written are put back.
pub fn apply_limits(dir: &Path, name: &str, old: &Value, new: &Value) -> Result<(), String> {
    if instances::state(dir, name) != "RUNNING" {
        return Ok(());
    }
    let before: BTreeMap<String, String> = crate::config::limit_settings(old).into_iter().collect();
    let after: BTreeMap<String, String> = crate::config::limit_settings(new).into_iter().collect();
    let mut changes: Vec<(String, String, String)> = Vec::new();
    for (k, v) in &after {
        if before.get(k) != Some(v) {
            let was = before
                .get(k)
                .cloned()
                .unwrap_or_else(|| crate::config::unlimited(k));
            changes.push((k.clone(), v.clone(), was));
        }
    }
    for (k, v) in &before {
        if !after.contains_key(k) {
            changes.push((k.clone(), crate::config::unlimited(k), v.clone()));
        }
    }
    let mut done: Vec<(String, String)> = Vec::new();
    for (key, value, was) in changes {
        if let Err(e) = instances::set_cgroup(dir, name, &key, &value) {
            for (k, v) in done.iter().rev() {
                let _ = instances::set_cgroup(dir, name, k, v);
            }
            let file = key
                .trim_start_matches("lxc.cgroup2.")
                .trim_start_matches("lxc.cgroup.");
            return Err(format!(
                "Failed to set {file} to {value} on the running instance: {e}"
            ));
        }
        done.push((key, was));
    }
    Ok(())
}

/// The nic devices of expanded devices: device name → config.
fn nic_devices(devices: &Value) -> BTreeMap<String, Value> {
    devices
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, d)| d.get("type").and_then(Value::as_str) == Some("nic"))
                .map(|(k, d)| (k.clone(), d.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The interface's name in the container: `name`, else the device's.
fn ifname<'a>(device: &'a str, d: &'a Value) -> &'a str {
    match d.get("name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n,
        _ => device,
    }
}

fn nics(dir: &Path, (old_profiles, old): Side, (profiles, new): Side) -> Result<(), String> {
    let Some(info) = instances::live(dir, &new.name) else {
        return Ok(());
    };
    let (before, after) = (
        nic_devices(&expanded_devices(old_profiles, old)),
        nic_devices(&expanded_devices(profiles, new)),
    );
    reconcile(&before, &after, |dev, d, add| {
        if add {
            // an undone removal puts back the old device, with the old instance's MAC
            let inst = if after.get(dev) == Some(d) { new } else { old };
            add_nic(info.pid, inst, dev, d)
        } else {
            remove_nic(info.pid, ifname(dev, d))
        }
        .map_err(|e| format!("Device \"{dev}\": {e}"))
    })
}

/// Applies the difference between two sets of devices (name → config) through `plug(name,
/// config, add)`: what went or changed is removed, then what came or changed is added. On a
/// failure what was done is undone, last first, and the failure returned.
pub fn reconcile(
    before: &BTreeMap<String, Value>,
    after: &BTreeMap<String, Value>,
    plug: impl Fn(&str, &Value, bool) -> Result<(), String>,
) -> Result<(), String> {
    let removals = before
        .iter()
        .filter(|(name, d)| after.get(*name) != Some(*d))
        .map(|(name, d)| (name, d, false));
    let additions = after
        .iter()
        .filter(|(name, d)| before.get(*name) != Some(*d))
        .map(|(name, d)| (name, d, true));
    let mut done: Vec<(&String, &Value, bool)> = Vec::new();
    for (name, d, add) in removals.chain(additions) {
        if let Err(e) = plug(name, d, add) {
            for (name, d, add) in done.into_iter().rev() {
                let _ = plug(name, d, !add);
            }
            return Err(e);
        }
        done.push((name, d, add));
    }
    Ok(())
}

/// A veth pair: the host side on the nic's bridge and up, the other with the nic's MAC and MTU,
/// moved into the container (`pid`'s network namespace) under its name and brought up there.
fn add_nic(pid: i32, inst: &Instance, device: &str, d: &Value) -> Result<(), String> {
    let get = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
    let bridge = if get("network").is_empty() {
        get("parent")
    } else {
        get("network")
    };
    let name = ifname(device, d).to_string();
    let mac = warren_net::parse_hwaddr(&nic_hwaddr(inst, device, d))?;
    let netns = container_netns(pid)?;
    let mut nl = warren_net::Netlink::open().map_err(|e| e.to_string())?;
    let bridge_index = nl
        .link_index(bridge)
        .map_err(|e| format!("bridge {bridge}: {e}"))?;
    let host = warren_net::random_name("veth");
    let peer = warren_net::random_name("wnic");
    nl.create_veth(&host, &peer, warren_net::Namespace::Here)
        .map_err(|e| e.to_string())?;
    let set_up = |nl: &mut warren_net::Netlink| -> Result<(), warren_net::NetError> {
        let host_index = nl.link_index(&host)?;
        let peer_index = nl.link_index(&peer)?;
        nl.set_hwaddr(peer_index, mac)?;
        if let Ok(mtu) = get("mtu").parse::<u32>() {
            nl.set_mtu(host_index, mtu)?;
            nl.set_mtu(peer_index, mtu)?;
        }
        nl.set_master(host_index, bridge_index)?;
        nl.set_up(host_index)?;
        nl.move_to_ns_named(peer_index, netns.as_raw_fd(), &name)
    };
    if let Err(e) = set_up(&mut nl) {
        // deleting one end deletes both
        if let Ok(i) = nl.link_index(&host) {
            let _ = nl.delete_link(i);
        }
        return Err(e.to_string());
    }
    in_netns(pid, move |nl| {
        let i = nl.link_index(&name)?;
        let up = nl.set_up(i);
        if up.is_err() {
            // not left half-made in the container (a retry would find the name taken)
            let _ = nl.delete_link(i);
        }
        up
    })
}

/// Deletes the container's interface `name` (and with it the host side of its veth pair); one
/// already gone is no error.
fn remove_nic(pid: i32, name: &str) -> Result<(), String> {
    let name = name.to_string();
    in_netns(pid, move |nl| match nl.link_index(&name) {
        Ok(i) => nl.delete_link(i),
        Err(warren_net::NetError::NoSuchLink(_)) => Ok(()),
        Err(e) => Err(e),
    })
}

/// The network namespace of the container whose init is `pid`; refused when it is the host's
/// (the container stopped and the pid went to a host process).
fn container_netns(pid: i32) -> Result<std::fs::File, String> {
    use std::os::unix::fs::MetadataExt;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| format!("the container's network namespace: {e}"))?;
    let ours = std::fs::metadata("/proc/self/ns/net").map(|m| m.ino()).ok();
    if ns.metadata().map(|m| m.ino()).ok() == ours {
        return Err("the container is not running any more".into());
    }
    Ok(ns)
}

/// Runs `f` on a netlink socket in `pid`'s network namespace, from a thread of its own (setns
/// into a network namespace changes only the calling thread's).
fn in_netns(
    pid: i32,
    f: impl FnOnce(&mut warren_net::Netlink) -> Result<(), warren_net::NetError> + Send + 'static,
) -> Result<(), String> {
    std::thread::spawn(move || -> Result<(), String> {
        let ns = container_netns(pid)?;
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("enter the container's network namespace: {e}"))?;
        let mut nl = warren_net::Netlink::open().map_err(|e| e.to_string())?;
        f(&mut nl).map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| "the network namespace thread failed".to_string())?
}
