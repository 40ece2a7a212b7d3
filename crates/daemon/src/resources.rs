//! `GET /1.0/resources`: the host's CPUs, memory, and root filesystem, in Incus's shape (the
//! basics `incus info --resources` prints).

use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A socket's model name, vendor, and its cores' thread ids by core id.
type Socket = (String, String, BTreeMap<u64, Vec<u64>>);

/// /proc/cpuinfo: per socket, its cores, each with its threads.
fn cpu() -> Value {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let arch = nix::sys::utsname::uname()
        .map(|u| u.machine().to_string_lossy().into_owned())
        .unwrap_or_default();
    // socket -> (name, vendor, core -> [thread ids])
    let mut sockets: BTreeMap<u64, Socket> = BTreeMap::new();
    let mut total = 0;
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let field = |k: &str| {
            block.lines().find_map(|l| {
                let (key, v) = l.split_once(':')?;
                (key.trim() == k).then(|| v.trim().to_string())
            })
        };
        let num = |k: &str| field(k).and_then(|v| v.parse::<u64>().ok());
        let Some(thread) = num("processor") else {
            continue;
        };
        total += 1;
        let socket = num("physical id").unwrap_or(0);
        let core = num("core id").unwrap_or(thread);
        let entry = sockets.entry(socket).or_insert_with(|| {
            (
                field("model name").unwrap_or_default(),
                field("vendor_id").unwrap_or_default(),
                BTreeMap::new(),
            )
        });
        entry.2.entry(core).or_default().push(thread);
    }
    let sockets: Vec<Value> = sockets
        .into_iter()
        .map(|(socket, (name, vendor, cores))| {
            let cores: Vec<Value> = cores
                .into_iter()
                .map(|(core, threads)| {
                    json!({"core": core, "die": 0, "flags": [], "frequency": 0,
                           "threads": threads.iter().enumerate().map(|(i, t)| json!({
                               "id": t, "numa_node": 0, "thread": i, "online": true, "isolated": false})).collect::<Vec<_>>()})
                })
                .collect();
            json!({"name": name, "vendor": vendor, "socket": socket, "cache": [], "cores": cores,
                   "frequency": 0, "frequency_minimum": 0, "frequency_turbo": 0})
        })
        .collect();
    json!({"architecture": arch, "sockets": sockets, "total": total})
}

fn meminfo(key: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}:")))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

pub fn host() -> Value {
    let total = meminfo("MemTotal");
    let used = total.saturating_sub(meminfo("MemAvailable"));
    json!({
        "cpu": cpu(),
        "memory": {"hugepages_total": 0, "hugepages_used": 0, "hugepages_size": 0, "nodes": [],
                   "used": used, "total": total},
        "gpu": {"cards": [], "total": 0},
        "network": {"cards": [], "total": 0},
        "storage": {"disks": [], "total": 0},
        "usb": {"devices": [], "total": 0},
        "pci": {"devices": [], "total": 0},
        "system": {"uuid": "", "vendor": "", "product": "", "family": "", "version": "", "sku": "",
                   "serial": "", "type": "unknown", "firmware": null, "chassis": null, "motherboard": null},
        "load": load(),
    })
}

fn load() -> Value {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let f: Vec<f64> = text
        .split_whitespace()
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect();
    let procs = text
        .split_whitespace()
        .nth(3)
        .and_then(|p| p.split('/').nth(1))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    json!({"average_1min": f.first().copied().unwrap_or(0.0), "average_5min": f.get(1).copied().unwrap_or(0.0),
           "average_10min": f.get(2).copied().unwrap_or(0.0), "processes": procs})
}
