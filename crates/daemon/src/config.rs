//! Instance config keys: which exist, what values they take, and what they become in the
//! container's LXC config (limits through the cgroup version the host has).

use serde_json::Value;

/// Checks every key and value; the error is Incus's wording ("Invalid config: ...").
pub fn validate(config: &Value) -> Result<(), String> {
    let Some(map) = config.as_object() else {
        return Err("Invalid config: config must be an object".into());
    };
    for (k, v) in map {
        let value = v
            .as_str()
            .ok_or_else(|| format!("Invalid config: {k}: values are strings"))?;
        if let Some(name) = k.strip_prefix("environment.") {
            // they become lxc.environment lines: one line, a plain variable name
            let name_ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
            if !name_ok || value.contains(['\n', '\r', '\0']) {
                return Err(format!("Invalid config: Invalid value for {k}: {value:?}"));
            }
            continue;
        }
        let free = k.starts_with("user.") || k.starts_with("image.") || k.starts_with("volatile.");
        if free {
            continue;
        }
        let ok = match k.as_str() {
            "security.privileged" | "security.nesting" | "boot.autostart" => {
                matches!(value, "true" | "false" | "")
            }
            "boot.autostart.delay"
            | "boot.autostart.priority"
            | "boot.host_shutdown_timeout"
            | "boot.stop.priority" => value.is_empty() || value.parse::<u32>().is_ok(),
            "limits.memory" => value.is_empty() || memory_bytes(value).is_some(),
            "limits.processes" => value.is_empty() || value.parse::<u64>().is_ok_and(|n| n > 0),
            "limits.cpu" => value.is_empty() || cpuset(value).is_some(),
            "raw.lxc" => raw_lxc_ok(value),
            _ => return Err(format!("Invalid config: Unknown configuration key: {k}")),
        };
        if !ok {
            return Err(format!("Invalid config: Invalid value for {k}: {value}"));
        }
    }
    Ok(())
}

/// `256MiB`, `1GB`, `512000000`: bytes.
pub fn memory_bytes(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit {
        "" | "B" => 1,
        "kB" => 1000,
        "MB" => 1000_u64.pow(2),
        "GB" => 1000_u64.pow(3),
        "TB" => 1000_u64.pow(4),
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult).filter(|b| *b > 0)
}

/// `2` (that many CPUs: 0-1) or a cpuset list (`0,2-3`): the cpuset string.
pub fn cpuset(v: &str) -> Option<String> {
    if let Ok(n) = v.parse::<u32>() {
        return (n > 0).then(|| {
            if n == 1 {
                "0".to_string()
            } else {
                format!("0-{}", n - 1)
            }
        });
    }
    let ok = v.split(',').all(|part| {
        let mut ends = part.splitn(2, '-');
        let a = ends.next().and_then(|a| a.parse::<u32>().ok());
        match ends.next() {
            Some(b) => a.zip(b.parse::<u32>().ok()).is_some_and(|(a, b)| a <= b),
            None => a.is_some(),
        }
    });
    ok.then(|| v.to_string())
}

/// raw.lxc is LXC config text; it must parse (as warren-lxc reads it).
fn raw_lxc_ok(text: &str) -> bool {
    warren_lxc_config::Config::parse_str(text, std::path::Path::new("raw.lxc"), &Default::default())
        .is_ok()
}

/// The LXC lines for the limits, for the cgroup version that has each controller here.
pub fn limit_lines(config: &Value) -> Vec<String> {
    limit_settings(config)
        .into_iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect()
}

/// The limits as (LXC key, value): `lxc.cgroup2.memory.max` where cgroup2 has the controller
/// here, `lxc.cgroup.memory.limit_in_bytes` where a v1 hierarchy has it.
pub fn limit_settings(config: &Value) -> Vec<(String, String)> {
    let get = |k: &str| {
        config
            .get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let mut out = Vec::new();
    if let Some(b) = get("limits.memory").and_then(memory_bytes) {
        out.push((limit_key("memory"), b.to_string()));
    }
    if let Some(n) = get("limits.processes") {
        out.push((limit_key("pids"), n.to_string()));
    }
    if let Some(set) = get("limits.cpu").and_then(cpuset) {
        out.push((limit_key("cpuset"), set));
    }
    out
}

/// The LXC key of a limit's controller here (memory, pids or cpuset): cgroup2 when the root's
/// cgroup.controllers lists it, else the v1 file.
fn limit_key(controller: &str) -> String {
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
    let (v1file, v2file) = match controller {
        "memory" => ("memory.limit_in_bytes", "memory.max"),
        "pids" => ("pids.max", "pids.max"),
        _ => ("cpuset.cpus", "cpuset.cpus"),
    };
    if v2.split_whitespace().any(|c| c == controller) {
        format!("lxc.cgroup2.{v2file}")
    } else {
        format!("lxc.cgroup.{v1file}")
    }
}

/// What a limit's cgroup file holds when there is no limit.
pub fn unlimited(lxc_key: &str) -> String {
    if lxc_key.ends_with("memory.limit_in_bytes") {
        "-1".into()
    } else if lxc_key.ends_with("cpuset.cpus") {
        std::fs::read_to_string("/sys/devices/system/cpu/online")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "0".into())
    } else {
        "max".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_values() {
        assert!(
            validate(&json!({"limits.memory": "256MiB", "user.x": "y", "limits.cpu": "2"})).is_ok()
        );
        assert_eq!(memory_bytes("256MiB"), Some(256 << 20));
        assert_eq!(cpuset("2").as_deref(), Some("0-1"));
        assert_eq!(cpuset("0,2-3").as_deref(), Some("0,2-3"));
        assert!(validate(&json!({"limits.memory": "bogus"}))
            .unwrap_err()
            .contains("Invalid value for limits.memory: bogus"));
        assert!(validate(&json!({"nope": "1"}))
            .unwrap_err()
            .contains("Unknown configuration key: nope"));
        assert!(validate(&json!({"security.privileged": "maybe"})).is_err());
        assert!(validate(&json!({"raw.lxc": "lxc.bogus.key = 1"})).is_err());
        assert!(validate(&json!({"environment.FOO": "bar baz"})).is_ok());
        assert!(validate(&json!({"environment.FOO": "x\nlxc.rootfs.path = /"})).is_err());
        assert!(validate(&json!({"environment.A=B": "x"})).is_err());
    }
}
