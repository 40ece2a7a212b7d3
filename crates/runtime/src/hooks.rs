//! `lxc.hook.*`: running hook commands at their point of the container's life, with LXC's
//! environment (LXC_NAME, LXC_ROOTFS_MOUNT, LXC_HOOK_TYPE, ...) and arguments.

use std::process::Command;

use crate::spec::{ContainerSpec, HookKind};

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook \"{command}\" could not run: {source}")]
    Spawn {
        kind: &'static str,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{kind} hook \"{command}\" failed with {status}")]
    Failed {
        kind: &'static str,
        command: String,
        status: String,
    },
}

/// The environment LXC gives every hook. `target` is `LXC_TARGET` for stop hooks ("stop"/"reboot").
pub fn hook_env(spec: &ContainerSpec, target: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![
        ("LXC_NAME".to_string(), spec.name.clone()),
        (
            "LXC_ROOTFS_MOUNT".to_string(),
            spec.rootfs
                .mount
                .as_ref()
                .unwrap_or(&spec.rootfs.path)
                .display()
                .to_string(),
        ),
        (
            "LXC_ROOTFS_PATH".to_string(),
            spec.rootfs.path.display().to_string(),
        ),
        ("LXC_CGNS_AWARE".to_string(), "1".to_string()),
        (
            "LXC_HOOK_VERSION".to_string(),
            spec.hook_version.to_string(),
        ),
        (
            "LXC_CONSOLE".to_string(),
            if spec.console.enabled {
                "/dev/console"
            } else {
                "none"
            }
            .to_string(),
        ),
    ];
    if let Some(cfg) = &spec.config_file {
        env.push(("LXC_CONFIG_FILE".to_string(), cfg.display().to_string()));
    }
    if let Some(log) = &spec.console.logfile {
        env.push(("LXC_CONSOLE_LOGPATH".to_string(), log.display().to_string()));
    }
    if let Some(t) = target {
        env.push(("LXC_TARGET".to_string(), t.to_string()));
    }
    env
}

/// Run every hook of `kind` in config order; the first failure stops the sequence.
pub fn run_all(
    spec: &ContainerSpec,
    kind: HookKind,
    env: &[(String, String)],
) -> Result<(), HookError> {
    for hook in spec.hooks.iter().filter(|h| h.kind == kind) {
        run_one(spec, kind, &hook.command, env)?;
    }
    Ok(())
}

fn run_one(
    spec: &ContainerSpec,
    kind: HookKind,
    command: &str,
    env: &[(String, String)],
) -> Result<(), HookError> {
    crate::debug!("running {} hook: {command}", kind.lxc_name());
    let mut cmd = Command::new("/bin/sh");
    // version 0 hooks get "NAME lxc TYPE" as arguments, version 1 only the environment
    let line = if spec.hook_version == 0 {
        format!(
            "{command} {} lxc {}",
            shell_quote(&spec.name),
            kind.lxc_name()
        )
    } else {
        command.to_string()
    };
    cmd.arg("-c").arg(line);
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd.env("LXC_HOOK_TYPE", kind.lxc_name());
    cmd.env("LXC_HOOK_SECTION", "lxc");
    let status = cmd.status().map_err(|source| HookError::Spawn {
        kind: kind.lxc_name(),
        command: command.to_string(),
        source,
    })?;
    if !status.success() {
        return Err(HookError::Failed {
            kind: kind.lxc_name(),
            command: command.to_string(),
            status: status.to_string(),
        });
    }
    Ok(())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `lxc.net.N.script.up` / `script.down` (`updown`): run on the host with LXC's arguments
/// (version 0: `NAME net up|down TYPE DEVICE`) and environment (LXC_HOOK_SECTION=net,
/// LXC_NET_TYPE, LXC_NET_PARENT, LXC_NET_PEER for a veth's host side).
pub fn run_net_script(
    spec: &ContainerSpec,
    script: &str,
    updown: &'static str,
    iface: &crate::network::Iface,
) -> Result<(), HookError> {
    let kind = if updown == "up" { "net up" } else { "net down" };
    let line = if spec.hook_version == 0 {
        format!(
            "{script} {} net {updown} {} {}",
            shell_quote(&spec.name),
            iface.type_name(),
            shell_quote(iface.host_device())
        )
    } else {
        script.to_string()
    };
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(line);
    cmd.envs(hook_env(spec, None));
    cmd.env("LXC_HOOK_TYPE", updown);
    cmd.env("LXC_HOOK_SECTION", "net");
    cmd.env("LXC_NET_TYPE", iface.type_name());
    if let Some(p) = iface.parent() {
        cmd.env("LXC_NET_PARENT", p);
    }
    if let crate::network::IfaceKind::Veth { host, .. } = &iface.kind {
        cmd.env("LXC_NET_PEER", host);
    }
    let status = cmd.status().map_err(|source| HookError::Spawn {
        kind,
        command: script.to_string(),
        source,
    })?;
    if !status.success() {
        return Err(HookError::Failed {
            kind,
            command: script.to_string(),
            status: status.to_string(),
        });
    }
    Ok(())
}
