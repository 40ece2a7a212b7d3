//! Mapping a parsed [`Config`] onto the runtime's [`ContainerSpec`], with LXC's defaults for
//! everything left unset.

use crate::error::Error;
use crate::keys::{self, KeyStatus};
use crate::parse::{resolve_relative, Config, Entry};
use crate::value::{self, AutoToken};
use std::path::{Path, PathBuf};
use warren_runtime::spec::{
    CgroupAccess, CgroupMountMode, ContainerSpec, HookKind, HookSpec, NetSpec, NsKind, Prlimit,
};

fn invalid(e: &Entry, why: impl Into<String>) -> Error {
    Error::InvalidValue {
        file: e.source.file.clone(),
        line: e.source.line,
        key: e.key.clone(),
        value: e.value.clone(),
        why: why.into(),
    }
}

/// Builds the runtime spec of container `name` in `lxcpath` from `config`.
pub fn to_spec(config: &Config, name: &str, lxcpath: &Path) -> Result<ContainerSpec, Error> {
    let mut spec = ContainerSpec {
        name: name.to_string(),
        lxcpath: lxcpath.to_path_buf(),
        config_file: config.from_disk.then(|| config.file.clone()),
        // LXC's defaults that differ from the spec type's.
        autodev: true,
        ..ContainerSpec::default()
    };
    spec.rootfs.path = lxcpath.join(name).join("rootfs");
    spec.rootfs.managed = true;

    let mut ns_clone: Option<Vec<NsKind>> = None;
    let mut ns_keep: Vec<NsKind> = Vec::new();
    let mut ns_clone_entry: Option<&Entry> = None;
    let mut ns_keep_entry: Option<&Entry> = None;
    let mut auto_tokens: Vec<AutoToken> = Vec::new();
    let mut fstab: Option<&Entry> = None;
    let mut entries_mounts = Vec::new();
    let mut time_offsets = false;

    for e in &config.entries {
        let key = e.key.as_str();
        let v = e.value.as_str();
        let Some(looked) = keys::lookup(key) else {
            continue;
        };
        if keys::status_of(key, v, &looked) == KeyStatus::NotYetEnforced {
            let label = if looked.net_index.is_some() && looked.info.name == "type" {
                format!("{key} = {v}")
            } else {
                key.to_string()
            };
            if !spec.unenforced.contains(&label) {
                spec.unenforced.push(label);
            }
        }
        if let Some(idx) = looked.net_index {
            let sub = &key[format!("lxc.net.{idx}.").len()..];
            let pos = match spec.nets.iter().position(|n| n.index == idx) {
                Some(p) => p,
                None => {
                    spec.nets.push(NetSpec {
                        index: idx,
                        ..NetSpec::default()
                    });
                    spec.nets.len() - 1
                }
            };
            let net = &mut spec.nets[pos];
            if sub == "type" {
                net.kind = v.to_string();
            }
            net.keys.push((sub.to_string(), v.to_string()));
            continue;
        }
        match key {
            "lxc.rootfs.path" => {
                let (ty, path) = value::parse_rootfs_path(v).map_err(|w| invalid(e, w))?;
                if ty != "dir" {
                    return Err(Error::Unsupported {
                        file: e.source.file.clone(),
                        line: e.source.line,
                        key: e.key.clone(),
                        why: format!(
                            "storage type \"{ty}\" is not supported yet; only \"dir\" rootfs work"
                        ),
                    });
                }
                spec.rootfs.path = PathBuf::from(path);
            }
            "lxc.rootfs.mount" => spec.rootfs.mount = Some(PathBuf::from(v)),
            "lxc.rootfs.options" => {
                spec.rootfs.options = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "lxc.rootfs.managed" => spec.rootfs.managed = v == "1",
            "lxc.uts.name" => spec.hostname = Some(v.to_string()),
            "lxc.init.cmd" => spec.init.cmd = v.split_whitespace().map(String::from).collect(),
            "lxc.init.cwd" => spec.init.cwd = Some(PathBuf::from(v)),
            "lxc.init.uid" => spec.init.uid = Some(value::parse_u32(v).map_err(|w| invalid(e, w))?),
            "lxc.init.gid" => spec.init.gid = Some(value::parse_u32(v).map_err(|w| invalid(e, w))?),
            "lxc.init.groups" => {
                spec.init.groups = value::parse_groups(v).map_err(|w| invalid(e, w))?
            }
            "lxc.autodev" => spec.autodev = v == "1",
            "lxc.mount.auto" => {
                for tok in v.split_whitespace() {
                    auto_tokens
                        .push(value::parse_mount_auto_token(tok).map_err(|w| invalid(e, w))?);
                }
            }
            "lxc.mount.entry" => {
                entries_mounts.push(value::parse_mount_line(v).map_err(|w| invalid(e, w))?)
            }
            "lxc.mount.fstab" => fstab = Some(e),
            "lxc.namespace.clone" => {
                let set = ns_clone.get_or_insert_with(Vec::new);
                for tok in v.split_whitespace() {
                    let k = value::ns_kind(tok).map_err(|w| invalid(e, w))?;
                    if !set.contains(&k) {
                        set.push(k);
                    }
                }
                ns_clone_entry = Some(e);
            }
            "lxc.namespace.keep" => {
                for tok in v.split_whitespace() {
                    ns_keep.push(value::ns_kind(tok).map_err(|w| invalid(e, w))?);
                }
                ns_keep_entry = Some(e);
            }
            "lxc.console.path" => {
                spec.console.enabled = v != "none";
                spec.console.path = (!matches!(v, "none" | "auto" | "")).then(|| PathBuf::from(v));
            }
            "lxc.console.logfile" => spec.console.logfile = Some(PathBuf::from(v)),
            "lxc.console.buffer.size" => {
                spec.console.buffer_size =
                    usize::try_from(console_size(v).map_err(|w| invalid(e, w))?)
                        .map_err(|_| invalid(e, "too large"))?
            }
            "lxc.console.size" => {
                spec.console.log_size = console_size(v).map_err(|w| invalid(e, w))?
            }
            "lxc.console.rotate" => spec.console.log_rotate = v == "1",
            "lxc.tty.max" => spec.tty_max = value::parse_u32(v).map_err(|w| invalid(e, w))?,
            "lxc.pty.max" => spec.pty_max = value::parse_u32(v).map_err(|w| invalid(e, w))?,
            "lxc.tty.dir" => {
                if v.is_empty() || v.contains('/') || v == "." || v == ".." {
                    return Err(invalid(
                        e,
                        "a directory name under /dev (no \"/\")".to_string(),
                    ));
                }
                spec.tty_dir = Some(v.to_string());
            }
            "lxc.cgroup.dir" => spec.cgroup.dir = Some(v.to_string()),
            "lxc.cgroup.relative" => spec.cgroup.relative = v == "1",
            "lxc.signal.halt" => {
                spec.signals.halt = value::parse_signal(v).map_err(|w| invalid(e, w))?
            }
            "lxc.signal.reboot" => {
                spec.signals.reboot = value::parse_signal(v).map_err(|w| invalid(e, w))?
            }
            "lxc.signal.stop" => {
                spec.signals.stop = value::parse_signal(v).map_err(|w| invalid(e, w))?
            }
            "lxc.hook.version" => {
                spec.hook_version = value::parse_u32(v).map_err(|w| invalid(e, w))?
            }
            "lxc.idmap" => spec
                .idmaps
                .extend(value::parse_idmap(v).map_err(|w| invalid(e, w))?),
            "lxc.ephemeral" => spec.ephemeral = v == "1",
            "lxc.environment" => {
                if let Some((name, val)) = v.split_once('=') {
                    spec.environment.push((name.to_string(), val.to_string()));
                } else if let Ok(val) = std::env::var(v) {
                    // A bare name passes the caller's value through, as LXC 4+ does.
                    spec.environment.push((v.to_string(), val));
                }
            }
            "lxc.cap.drop" => {
                for tok in v.split_whitespace() {
                    spec.cap_drop
                        .push(value::cap_name(tok).map_err(|w| invalid(e, w))?);
                }
            }
            "lxc.cap.keep" => {
                for tok in v.split_whitespace() {
                    if tok == "none" {
                        // LXC: "none" forgets earlier keeps and keeps nothing at all.
                        spec.cap_keep = vec!["none".to_string()];
                    } else {
                        spec.cap_keep
                            .push(value::cap_name(tok).map_err(|w| invalid(e, w))?);
                    }
                }
            }
            "lxc.no_new_privs" => spec.no_new_privs = v == "1",
            "lxc.seccomp.profile" => spec.seccomp_profile = Some(PathBuf::from(v)),
            "lxc.time.offset.boot" | "lxc.time.offset.monotonic" => time_offsets = true,
            _ => {
                if let Some(file) = key.strip_prefix("lxc.cgroup2.") {
                    spec.cgroup.v2.push((file.to_string(), v.to_string()));
                } else if let Some(file) = key.strip_prefix("lxc.cgroup.") {
                    // device rules are enforced through the v1 devices controller (on cgroup2
                    // hosts the runtime reports them as not enforced)
                    if looked.info.shape == keys::KeyShape::Prefix {
                        spec.cgroup.v1.push((file.to_string(), v.to_string()));
                    }
                } else if let Some(kind) = key.strip_prefix("lxc.hook.") {
                    if let Some(kind) = HookKind::from_lxc_name(kind) {
                        spec.hooks.push(HookSpec {
                            kind,
                            command: v.to_string(),
                        });
                    }
                } else if let Some(ns) = key.strip_prefix("lxc.namespace.share.") {
                    let k = value::ns_kind(ns).map_err(|w| invalid(e, w))?;
                    spec.namespaces.share.push((k, v.to_string()));
                } else if let Some(n) = key.strip_prefix("lxc.sysctl.") {
                    spec.sysctls.push((n.to_string(), v.to_string()));
                } else if let Some(n) = key.strip_prefix("lxc.proc.") {
                    spec.proc_writes.push((n.to_string(), v.to_string()));
                } else if let Some(res) = key.strip_prefix("lxc.prlimit.") {
                    let (soft, hard) = value::parse_prlimit_value(v).map_err(|w| invalid(e, w))?;
                    spec.prlimits.push(Prlimit {
                        resource: res.to_string(),
                        soft,
                        hard,
                    });
                }
            }
        }
    }

    // LXC mounts the fstab file before the lxc.mount.entry lines.
    if let Some(e) = fstab {
        spec.mounts = read_fstab(e)?;
    }
    spec.mounts.extend(entries_mounts);

    // lxc.mount.auto: each token replaces the earlier setting of its own kind.
    let keeps_sys_admin = if spec.cap_keep.is_empty() {
        !spec.cap_drop.iter().any(|c| c == "sys_admin")
    } else {
        spec.cap_keep.iter().any(|c| c == "sys_admin")
    };
    for t in auto_tokens {
        match t {
            AutoToken::Proc(m) => spec.mount_auto.proc = Some(m),
            AutoToken::Sys(m) => spec.mount_auto.sys = Some(m),
            AutoToken::Cgroup {
                access,
                full,
                force,
            } => {
                // No specifier: rw when the container keeps CAP_SYS_ADMIN (it could remount
                // anyway), mixed otherwise.
                let access = access.unwrap_or(if keeps_sys_admin {
                    CgroupAccess::Rw
                } else {
                    CgroupAccess::Mixed
                });
                spec.mount_auto.cgroup = Some(CgroupMountMode {
                    access,
                    full,
                    force,
                });
            }
            AutoToken::Shmounts(h, c) => {
                spec.mount_auto.shmounts = Some((PathBuf::from(h), PathBuf::from(c)))
            }
        }
    }

    // Namespaces.
    if let (Some(c), Some(k)) = (ns_clone_entry, ns_keep_entry) {
        // Blame whichever came last: the earlier one was fine on its own.
        let pos = |x: &Entry| config.entries.iter().position(|e| std::ptr::eq(e, x));
        let later = if pos(c) > pos(k) { c } else { k };
        return Err(invalid(
            later,
            "lxc.namespace.clone and lxc.namespace.keep cannot both be set",
        ));
    }
    let mut new = match ns_clone {
        Some(set) => set,
        None => {
            let mut d = spec.namespaces.new.clone();
            if !spec.idmaps.is_empty() {
                d.insert(0, NsKind::User);
            }
            if time_offsets {
                d.push(NsKind::Time);
            }
            d
        }
    };
    if !spec.idmaps.is_empty() && !new.contains(&NsKind::User) && !ns_keep.contains(&NsKind::User) {
        new.insert(0, NsKind::User);
    }
    new.retain(|k| !ns_keep.contains(k));
    if spec.nets.iter().any(|n| n.kind == "none") {
        new.retain(|k| *k != NsKind::Net);
    }
    let shared: Vec<NsKind> = spec.namespaces.share.iter().map(|(k, _)| *k).collect();
    new.retain(|k| !shared.contains(k));
    spec.namespaces.new = new;
    // what AppArmor's mount rules do for LXC, for every privileged container; "unconfined" is
    // LXC's way to ask for none
    spec.mount_guard = !spec.namespaces.new.contains(&NsKind::User)
        && !spec
            .namespaces
            .share
            .iter()
            .any(|(k, _)| *k == NsKind::User)
        && config.get("lxc.apparmor.profile").as_deref() != Some("unconfined");

    // Networks: in index order, each with a type.
    spec.nets.sort_by_key(|n| n.index);
    for n in &spec.nets {
        if n.kind.is_empty() {
            let e = config
                .entries
                .iter()
                .find(|e| e.key.starts_with(&format!("lxc.net.{}.", n.index)));
            if let Some(e) = e {
                return Err(invalid(
                    e,
                    format!("interface {} has no lxc.net.{}.type", n.index, n.index),
                ));
            }
        }
        if n.kind == "none" && spec.nets.len() > 1 {
            if let Some(e) = config
                .entries
                .iter()
                .find(|e| e.key == format!("lxc.net.{}.type", n.index))
            {
                return Err(invalid(
                    e,
                    "type \"none\" (share the host's network) must be the only interface",
                ));
            }
        }
    }
    Ok(spec)
}

/// `lxc.console.buffer.size` / `lxc.console.size`: `auto` is 128 KiB; sizes are rounded up to a
/// power of two of at least one page, as LXC does for its ring buffer.
fn console_size(v: &str) -> Result<u64, String> {
    if v == "auto" {
        return Ok(128 * 1024);
    }
    let n = value::parse_size(v)?;
    if n == 0 {
        return Ok(0);
    }
    n.max(4096)
        .checked_next_power_of_two()
        .ok_or_else(|| "size too large".to_string())
}

fn read_fstab(e: &Entry) -> Result<Vec<warren_runtime::spec::MountEntry>, Error> {
    let path = resolve_relative(&e.value, &e.source.file);
    let text = std::fs::read_to_string(&path).map_err(|source| Error::ReadFile {
        file: e.source.file.clone(),
        line: e.source.line,
        key: e.key.clone(),
        path: path.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let body = raw.trim();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        out.push(
            value::parse_mount_line(body).map_err(|why| Error::InvalidValue {
                file: path.clone(),
                line: i + 1,
                key: e.key.clone(),
                value: body.to_string(),
                why,
            })?,
        );
    }
    Ok(out)
}
