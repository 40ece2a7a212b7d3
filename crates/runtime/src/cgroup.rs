//! cgroups of containers on cgroup2, hybrid (v1 + unified) and v1 hosts, behind one interface.
//!
//! [`Hierarchies`] is what this host has mounted (read from `/proc/self/mountinfo`);
//! [`ContainerCgroup`] is one container's (or monitor's) cgroup across all of those hierarchies:
//! creating, limiting, attaching, freezing, killing, measuring and removing it.
//!
//! Like LXC, containers are placed at the root of every hierarchy by default, but under names of
//! their own ([`payload_name`], [`monitor_name`]) so that warren runs beside LXC and Incus, which
//! both use `lxc.payload.<name>`.

mod detect;
mod group;
mod stats;
#[cfg(test)]
mod tests;

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use detect::{Hierarchies, Layout, UnifiedHierarchy, V1Hierarchy};
pub use group::{check_key, leave_v1_self, ContainerCgroup};
pub use stats::CgroupStats;

/// The lxcpath whose containers get plain names (no hash suffix), as in LXC.
pub const DEFAULT_LXCPATH: &str = "/var/lib/lxc";

/// Everything that can go wrong with cgroups; each variant names the path or key involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error("no cgroup hierarchy is mounted (no cgroup or cgroup2 entry in {0})")]
    NoHierarchies(String),
    #[error("cannot create cgroup {path}: permission denied; run as root or delegate a cgroup subtree (see README)")]
    PermissionDenied { path: PathBuf },
    #[error("cannot create cgroup {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error(
        "cgroup {path} already exists and has processes in it (is the container already running?)"
    )]
    InUse { path: PathBuf },
    #[error("cgroup {0} does not exist in any hierarchy")]
    NotFound(String),
    #[error("invalid cgroup name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// A setting whose controller is not available where it would have to go.
    #[error("{key}: {reason}")]
    Unavailable { key: String, reason: String },
    /// The kernel refused a setting.
    #[error("{key} = {value}: the kernel refused the write to {path}: {source}")]
    Setting {
        key: String,
        value: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot move pid {pid} into {path}: {source}")]
    Attach {
        pid: i32,
        path: PathBuf,
        source: io::Error,
    },
    #[error("timed out after {secs}s waiting for {what} ({path})")]
    Timeout {
        what: &'static str,
        path: PathBuf,
        secs: u64,
    },
    #[error("cannot remove cgroup {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
    #[error("cannot signal pid {pid}: {source}")]
    Kill { pid: i32, source: nix::Error },
    #[error("{0}")]
    Unsupported(String),
}

/// The cgroup name of container `name` in `lxcpath`: `warren.payload.<name>[-<hash>]`.
pub fn payload_name(lxcpath: &Path, name: &str) -> String {
    format!("warren.payload.{}", qualified(lxcpath, name))
}

/// The cgroup name of the monitor of container `name` in `lxcpath`: `warren.monitor.<name>[-<hash>]`.
pub fn monitor_name(lxcpath: &Path, name: &str) -> String {
    format!("warren.monitor.{}", qualified(lxcpath, name))
}

/// `name`, plus a hash of `lxcpath` unless it is the default one: cgroups live in one host-wide
/// namespace, so two lxcpaths holding the same container name must not share a cgroup.
fn qualified(lxcpath: &Path, name: &str) -> String {
    let bytes = lxcpath.as_os_str().as_bytes();
    // "/var/lib/lxc/" and "/var/lib/lxc" are the same directory: hash them alike.
    let mut end = bytes.len();
    while end > 1 && bytes[end - 1] == b'/' {
        end -= 1;
    }
    let trimmed = &bytes[..end];
    if trimmed == DEFAULT_LXCPATH.as_bytes() {
        return name.to_string();
    }
    let hash = format!("{:016x}", fnv1a64(trimmed));
    format!("{name}-{}", &hash[..8])
}

/// FNV-1a, 64 bit: tiny, stable across versions and platforms (unlike std's hasher).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
