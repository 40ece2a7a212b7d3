//! What warrend does to instances when it starts and when the host shuts down, as incusd does:
//! at start, instances with `boot.autostart=true` (or, without that key, those that were running
//! when warrend last shut them down) start, highest `boot.autostart.priority` first, waiting
//! `boot.autostart.delay` seconds after each; at shutdown (`warrend shutdown`, SIGPWR) every
//! running instance is stopped cleanly, highest `boot.stop.priority` first, each given
//! `boot.host_shutdown_timeout` seconds (30 by default) before it is killed, and its state
//! remembered in `volatile.last_state.power`.

use crate::db::{Instance, Profile};
use crate::{instances, log, Daemon};
use serde_json::{json, Value};

fn key(profiles: &[Profile], i: &Instance, k: &str) -> Option<String> {
    instances::expanded_config(profiles, i)
        .get(k)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn number(profiles: &[Profile], i: &Instance, k: &str, default: u64) -> u64 {
    key(profiles, i, k)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether the instance starts with warrend.
fn autostarts(profiles: &[Profile], i: &Instance) -> bool {
    match key(profiles, i, "boot.autostart").as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => {
            i.config
                .get("volatile.last_state.power")
                .and_then(Value::as_str)
                == Some("RUNNING")
        }
    }
}

/// Starts what should run, in priority order (in the background: the API answers meanwhile).
pub fn autostart(d: &std::sync::Arc<Daemon>) {
    let Ok((mut list, profiles)) = (|| -> Result<_, crate::db::DbError> {
        let db = d.db();
        Ok((db.instances()?, db.all_profiles()?))
    })() else {
        return;
    };
    list.retain(|i| autostarts(&profiles, i));
    if list.is_empty() {
        return;
    }
    list.sort_by_key(|i| std::cmp::Reverse(number(&profiles, i, "boot.autostart.priority", 0)));
    let d = d.clone();
    std::thread::spawn(move || {
        for i in list {
            if instances::state(&d.dir, &i.name) != "STOPPED" {
                continue;
            }
            let allowed = crate::restrictions::check_at_start(&d.db(), &profiles, &i);
            let project = crate::routes::project_of(&d, &i);
            match allowed.and_then(|()| instances::start(&d.dir, &profiles, &i, project.as_ref())) {
                Ok(()) => {
                    log::info(&format!("autostart: {} started", i.name));
                    d.hub.lifecycle("instance-started", &i.url(), json!({}));
                }
                Err(e) => log::error(&format!("autostart: {}: {e}", i.name)),
            }
            let delay = number(&profiles, &i, "boot.autostart.delay", 0);
            if delay > 0 {
                std::thread::sleep(std::time::Duration::from_secs(delay));
            }
        }
    });
}

/// Stops every running instance cleanly (in parallel within a priority), remembering which ran.
pub fn shutdown(d: &Daemon) {
    let Ok((list, profiles)) = (|| -> Result<_, crate::db::DbError> {
        let db = d.db();
        Ok((db.instances()?, db.all_profiles()?))
    })() else {
        return;
    };
    let mut running = Vec::new();
    for mut i in list {
        let st = instances::state(&d.dir, &i.name);
        let power = if st == "STOPPED" {
            "STOPPED"
        } else {
            "RUNNING"
        };
        if let Some(c) = i.config.as_object_mut() {
            c.insert("volatile.last_state.power".into(), json!(power));
        }
        let _ = d.db().update_instance(&i);
        if st != "STOPPED" {
            running.push(i);
        }
    }
    let mut priorities: Vec<u64> = running
        .iter()
        .map(|i| number(&profiles, i, "boot.stop.priority", 0))
        .collect();
    priorities.sort_unstable();
    priorities.dedup();
    for prio in priorities.into_iter().rev() {
        std::thread::scope(|s| {
            for i in running
                .iter()
                .filter(|i| number(&profiles, i, "boot.stop.priority", 0) == prio)
            {
                let timeout = number(&profiles, i, "boot.host_shutdown_timeout", 30) as i64;
                s.spawn(move || {
                    // frozen instances are thawed first: a frozen init can't halt
                    if instances::state(&d.dir, &i.name) == "FROZEN" {
                        let _ = instances::freeze(&d.dir, &i.name, false);
                    }
                    match instances::stop(&d.dir, &i.name, false, timeout) {
                        Ok(()) => log::info(&format!("shutdown: {} stopped", i.name)),
                        Err(e) => log::warn(&format!("shutdown: {}: {e}", i.name)),
                    }
                });
            }
        });
    }
}
