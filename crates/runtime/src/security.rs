//! What a container's processes may do, applied in the container just before exec (and to
//! attached processes): resource limits, sysctls, /proc/self writes, capabilities, no_new_privs,
//! and the seccomp filter (see `seccomp`).

use std::path::Path;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};

use crate::spec::{ContainerSpec, Prlimit};

/// A security setting that could not be applied: the container must not start without it.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("lxc.prlimit.{resource}: {why}")]
    Prlimit { resource: String, why: String },
    #[error("lxc.sysctl.{key}: {why}")]
    Sysctl { key: String, why: String },
    #[error("lxc.proc.{key}: {why}")]
    Proc { key: String, why: String },
    #[error("capabilities: {0}")]
    Caps(String),
    #[error("lxc.no_new_privs: {0}")]
    NoNewPrivs(String),
}

fn resource(name: &str) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource as R;
    Some(match name {
        "as" => R::RLIMIT_AS,
        "core" => R::RLIMIT_CORE,
        "cpu" => R::RLIMIT_CPU,
        "data" => R::RLIMIT_DATA,
        "fsize" => R::RLIMIT_FSIZE,
        "locks" => R::RLIMIT_LOCKS,
        "memlock" => R::RLIMIT_MEMLOCK,
        "msgqueue" => R::RLIMIT_MSGQUEUE,
        "nice" => R::RLIMIT_NICE,
        "nofile" => R::RLIMIT_NOFILE,
        "nproc" => R::RLIMIT_NPROC,
        "rss" => R::RLIMIT_RSS,
        "rtprio" => R::RLIMIT_RTPRIO,
        "rttime" => R::RLIMIT_RTTIME,
        "sigpending" => R::RLIMIT_SIGPENDING,
        "stack" => R::RLIMIT_STACK,
        _ => return None,
    })
}

/// `lxc.prlimit.*`: soft and hard limits for init (inherited by everything it starts).
pub fn apply_prlimits(limits: &[Prlimit]) -> Result<(), SecurityError> {
    for l in limits {
        let err = |why: String| SecurityError::Prlimit {
            resource: l.resource.clone(),
            why,
        };
        let r = resource(&l.resource).ok_or_else(|| err("unknown resource".into()))?;
        let inf = libc::RLIM_INFINITY;
        let soft = l.soft.unwrap_or(inf);
        let hard = l.hard.unwrap_or(inf);
        nix::sys::resource::setrlimit(r, soft, hard).map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// Sysctls that belong to a namespace the container has of its own. Anything else would change the
/// host, whatever the container's /proc/sys looks like.
pub fn sysctl_is_namespaced(key: &str) -> bool {
    key.starts_with("net.")
        || key.starts_with("fs.mqueue.")
        || matches!(
            key,
            "kernel.shmmax"
                | "kernel.shmall"
                | "kernel.shmmni"
                | "kernel.shm_rmid_forced"
                | "kernel.msgmax"
                | "kernel.msgmnb"
                | "kernel.msgmni"
                | "kernel.sem"
                | "kernel.hostname"
                | "kernel.domainname"
        )
}

/// `lxc.sysctl.*`, written through `proc_sys` (the /proc/sys of a proc instance that shows the
/// container's namespaces). Only namespaced keys are accepted.
pub fn apply_sysctls(sysctls: &[(String, String)], proc_sys: &Path) -> Result<(), SecurityError> {
    for (key, value) in sysctls {
        let err = |why: String| SecurityError::Sysctl {
            key: key.clone(),
            why,
        };
        if !sysctl_is_namespaced(key) {
            return Err(err(
                "not a namespaced sysctl: setting it from a container would change the host".into(),
            ));
        }
        if key
            .split('.')
            .any(|p| p.is_empty() || p == ".." || p.contains('/'))
        {
            return Err(err("invalid key".into()));
        }
        let path = proc_sys.join(key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|e| err(format!("write {}: {e}", path.display())))?;
    }
    Ok(())
}

/// `lxc.proc.*`: writes to /proc/self/<key> of init (oom_score_adj, ...).
pub fn apply_proc_writes(writes: &[(String, String)]) -> Result<(), SecurityError> {
    for (key, value) in writes {
        let err = |why: String| SecurityError::Proc {
            key: key.clone(),
            why,
        };
        if key.is_empty() || key.contains('/') || key.contains("..") {
            return Err(err("invalid key".into()));
        }
        std::fs::write(Path::new("/proc/self").join(key), value).map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

fn cap_from_name(name: &str) -> Result<Capability, SecurityError> {
    let full = format!("CAP_{}", name.to_ascii_uppercase());
    Capability::from_str(&full)
        .map_err(|_| SecurityError::Caps(format!("unknown capability \"{name}\"")))
}

/// The capabilities the container keeps: all but `lxc.cap.drop`, or only `lxc.cap.keep` (where
/// `none` keeps nothing). Capabilities this kernel doesn't know are left out.
pub fn kept_caps(drop: &[String], keep: &[String]) -> Result<CapsHashSet, SecurityError> {
    let known = caps::runtime::thread_all_supported();
    if !keep.is_empty() {
        let mut set = CapsHashSet::new();
        for k in keep.iter().filter(|k| k.as_str() != "none") {
            set.insert(cap_from_name(k)?);
        }
        return Ok(set.intersection(&known).copied().collect());
    }
    let mut set = known;
    for d in drop {
        set.remove(&cap_from_name(d)?);
    }
    Ok(set)
}

/// Reduce this process to `kept`: bounding set first (needs CAP_SETPCAP, so while we still have
/// it), then inheritable, ambient, permitted and effective.
pub fn restrict_caps(kept: &CapsHashSet) -> Result<(), SecurityError> {
    drop_bounding(kept)?;
    trim_caps(kept)
}

fn caps_err(what: &str, err: caps::errors::CapsError) -> SecurityError {
    SecurityError::Caps(format!("{what}: {err}"))
}

/// Drop from the bounding set what isn't kept (needs CAP_SETPCAP: do it before changing ids).
pub fn drop_bounding(kept: &CapsHashSet) -> Result<(), SecurityError> {
    let e = caps_err;
    let bounding = caps::read(None, CapSet::Bounding).map_err(|err| e("read bounding set", err))?;
    for cap in bounding.difference(kept) {
        caps::drop(None, CapSet::Bounding, *cap)
            .map_err(|err| e(&format!("drop {cap} from the bounding set"), err))?;
    }
    Ok(())
}

/// Reduce ambient, inheritable, permitted and effective to what is kept (after a change of ids,
/// which may need CAP_SETUID/CAP_SETGID even when they are not kept).
pub fn trim_caps(kept: &CapsHashSet) -> Result<(), SecurityError> {
    let e = caps_err;
    caps::clear(None, CapSet::Ambient).map_err(|err| e("clear ambient", err))?;
    let inheritable =
        caps::read(None, CapSet::Inheritable).map_err(|err| e("read inheritable", err))?;
    caps::set(
        None,
        CapSet::Inheritable,
        &inheritable.intersection(kept).copied().collect(),
    )
    .map_err(|err| e("set inheritable", err))?;
    let permitted = caps::read(None, CapSet::Permitted).map_err(|err| e("read permitted", err))?;
    let new_permitted: CapsHashSet = permitted.intersection(kept).copied().collect();
    caps::set(None, CapSet::Effective, &new_permitted).map_err(|err| e("set effective", err))?;
    caps::set(None, CapSet::Permitted, &new_permitted).map_err(|err| e("set permitted", err))?;
    Ok(())
}

/// Everything of this module for a process about to exec in the container: caps, then
/// no_new_privs. (Seccomp is loaded after these, last.)
pub fn restrict_process(
    spec_caps: (&[String], &[String]),
    no_new_privs: bool,
) -> Result<(), SecurityError> {
    let kept = kept_caps(spec_caps.0, spec_caps.1)?;
    restrict_caps(&kept)?;
    if no_new_privs {
        nix::sys::prctl::set_no_new_privs()
            .map_err(|e| SecurityError::NoNewPrivs(e.to_string()))?;
    }
    Ok(())
}

/// Convenience for the container's init.
pub fn restrict_init(spec: &ContainerSpec) -> Result<(), SecurityError> {
    restrict_process((&spec.cap_drop, &spec.cap_keep), spec.no_new_privs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespaced_sysctls_pass() {
        assert!(sysctl_is_namespaced("net.ipv4.ip_forward"));
        assert!(sysctl_is_namespaced("kernel.shmmax"));
        assert!(!sysctl_is_namespaced("kernel.panic"));
        assert!(!sysctl_is_namespaced("vm.swappiness"));
        let dir = tempfile::tempdir().unwrap();
        let err = apply_sysctls(&[("kernel.panic".into(), "1".into())], dir.path()).unwrap_err();
        assert!(err.to_string().contains("would change the host"), "{err}");
    }

    #[test]
    fn kept_caps_drop_and_keep() {
        let kept = kept_caps(&["sys_module".into(), "sys_time".into()], &[]).unwrap();
        assert!(!kept.contains(&Capability::CAP_SYS_MODULE));
        assert!(kept.contains(&Capability::CAP_CHOWN));
        let kept = kept_caps(&[], &["chown".into(), "kill".into()]).unwrap();
        assert_eq!(kept.len(), 2);
        let none = kept_caps(&[], &["none".into()]).unwrap();
        assert!(none.is_empty());
        assert!(kept_caps(&["flying".into()], &[]).is_err());
    }
}
