//! A project's aggregate limits, as Incus has them: `limits.memory`, `limits.cpu` and
//! `limits.processes` cap the sum of its instances' own `limits.*` (expanded with their
//! profiles). With one of them set, every instance of the project must set the matching key.

use crate::db::Project;
use serde_json::Value;

/// The project keys, each summing the instance key of the same name.
pub const KEYS: &[&str] = &["limits.memory", "limits.cpu", "limits.processes"];

/// How much of `key` one instance's value takes: bytes, CPUs or processes.
fn amount(key: &str, value: &str) -> Option<u64> {
    match key {
        "limits.memory" => crate::config::memory_bytes(value),
        "limits.cpu" => crate::config::cpuset(value).map(|set| cpu_count(&set)),
        "limits.processes" => value.parse().ok(),
        _ => None,
    }
}

/// The number of CPUs in a set such as `0-3,6`.
fn cpu_count(set: &str) -> u64 {
    set.split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => match (a.parse::<u64>(), b.parse::<u64>()) {
                (Ok(a), Ok(b)) if a <= b => b - a + 1,
                _ => 0,
            },
            None => 1,
        })
        .fold(0, u64::saturating_add)
}

/// Whether `value` is good for project key `key` (the error says what it takes), or None when
/// `key` is not one of these.
pub fn check_key(key: &str, value: &str) -> Option<Result<(), String>> {
    if !KEYS.contains(&key) {
        return None;
    }
    let ok = value.is_empty()
        || match key {
            "limits.memory" => crate::config::memory_bytes(value).is_some(),
            _ => value.parse::<u64>().is_ok(),
        };
    Some(if ok {
        Ok(())
    } else if key == "limits.memory" {
        Err("an amount of memory such as 2GiB".into())
    } else {
        Err("a number".into())
    })
}

/// The project's limit for `key`, if it sets one.
pub fn limit(p: &Project, key: &str) -> Option<u64> {
    let v = p.config.get(key).and_then(Value::as_str)?;
    match key {
        "limits.memory" => crate::config::memory_bytes(v),
        _ => v.parse().ok(),
    }
}

fn shown(key: &str, n: u64) -> String {
    match key {
        "limits.memory" => format!("{n} bytes"),
        "limits.cpu" => format!("{n} CPUs"),
        _ => format!("{n} processes"),
    }
}

/// What the instances use of `key`, summed (instances without it count nothing).
pub fn usage<'a>(key: &str, instances: impl IntoIterator<Item = &'a Value>) -> u64 {
    instances
        .into_iter()
        .filter_map(|c| c.get(key).and_then(Value::as_str))
        .filter_map(|v| amount(key, v))
        .fold(0, u64::saturating_add)
}

/// Whether project `p`'s instances, as `(name, expanded config)`, fit its aggregate limits.
pub fn check(p: &Project, instances: &[(String, Value)]) -> Result<(), String> {
    for key in KEYS {
        let Some(max) = limit(p, key) else {
            continue;
        };
        for (name, config) in instances {
            let value = config.get(*key).and_then(Value::as_str).unwrap_or("");
            if value.is_empty() {
                return Err(format!(
                    "Instance \"{name}\" has no {key}, which project \"{}\" requires (it sets {key}); set one on the instance or its profile",
                    p.name
                ));
            }
            if amount(key, value).is_none() {
                return Err(format!(
                    "Instance \"{name}\": {key}={value} can't be counted against project \"{}\"'s {key} (give an absolute value)",
                    p.name
                ));
            }
        }
        let used = usage(key, instances.iter().map(|(_, c)| c));
        if used > max {
            return Err(format!(
                "Project \"{}\" would use {} for {key}, over its limit of {}",
                p.name,
                shown(key, used),
                shown(key, max)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cpus_are_counted_in_sets_and_numbers() {
        assert_eq!(amount("limits.cpu", "2"), Some(2));
        assert_eq!(amount("limits.cpu", "0-3,6"), Some(5));
        assert_eq!(amount("limits.memory", "1GiB"), Some(1 << 30));
        assert_eq!(amount("limits.processes", "100"), Some(100));
    }

    #[test]
    fn sums_stay_under_the_limits_and_every_instance_sets_the_key() {
        let p = Project::for_test(json!({"limits.memory": "1GiB", "limits.processes": "300"}));
        let a = json!({"limits.memory": "512MiB", "limits.processes": "100"});
        let b = json!({"limits.memory": "256MiB", "limits.processes": "100"});
        let ok = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
        assert!(check(&p, &ok).is_ok());
        let big = json!({"limits.memory": "768MiB", "limits.processes": "100"});
        let over = vec![("a".to_string(), a.clone()), ("c".to_string(), big)];
        let err = check(&p, &over).unwrap_err();
        assert!(err.contains("over its limit"), "{err}");
        let unset = vec![("a".to_string(), a), ("d".to_string(), json!({}))];
        let err = check(&p, &unset).unwrap_err();
        assert!(err.contains("\"d\" has no limits.memory"), "{err}");
        assert!(check(
            &Project::for_test(json!({})),
            &[("d".to_string(), json!({}))]
        )
        .is_ok());
    }

    #[test]
    fn huge_values_saturate_instead_of_wrapping() {
        let p = Project::for_test(json!({"limits.processes": "1000"}));
        let a = json!({"limits.processes": "10"});
        let b = json!({"limits.processes": u64::MAX.to_string()});
        let err = check(&p, &[("a".into(), a), ("b".into(), b)]).unwrap_err();
        assert!(err.contains("over its limit"), "{err}");
    }

    #[test]
    fn values_are_checked() {
        assert!(check_key("limits.memory", "2GiB").is_some_and(|r| r.is_ok()));
        assert!(check_key("limits.memory", "lots").is_some_and(|r| r.is_err()));
        assert!(check_key("limits.cpu", "0-3").is_some_and(|r| r.is_err()));
        assert!(check_key("limits.instances", "3").is_none());
    }
}
