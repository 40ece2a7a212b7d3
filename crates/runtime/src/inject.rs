//! Mounts added to or removed from a running container (what Incus calls hotplugging a disk):
//! a bind of a host path, idmapped through the container's user namespace when asked, attached
//! inside the container's mount namespace at a path resolved there. setns into a mount
//! namespace needs a single-threaded process: these run in one of their own (`warren-lxc mount`).

use std::os::fd::AsFd;
use std::path::Path;

fn open_ns(pid: i32, kind: &str) -> Result<std::fs::File, String> {
    std::fs::File::open(format!("/proc/{pid}/ns/{kind}"))
        .map_err(|e| format!("the container's {kind} namespace (pid {pid}): {e}"))
}

fn enter_mount_ns(pid: i32) -> Result<(), String> {
    let mnt = open_ns(pid, "mnt")?;
    nix::sched::setns(&mnt, nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("enter the container's mount namespace: {e}"))?;
    // setns gave us the namespace's root and cwd: the container's
    std::env::set_current_dir("/").map_err(|e| e.to_string())
}

/// The host ids of the container's root (its user namespace's id 0; 0 without one).
fn container_root_ids(pid: i32) -> (u32, u32) {
    let outside_zero = |file: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .ok()
            .and_then(|map| {
                map.lines().find_map(|l| {
                    let mut f = l.split_whitespace().map(|n| n.parse::<u32>().ok());
                    match (f.next()??, f.next()??) {
                        (0, outside) => Some(outside),
                        _ => None,
                    }
                })
            })
            .unwrap_or(0)
    };
    (outside_zero("uid_map"), outside_zero("gid_map"))
}

/// Binds host path `source` at `target` inside the running container `pid` (made there when
/// missing, owned by `owner`), read-only if asked, idmapped through its user namespace if asked.
#[allow(clippy::too_many_arguments)]
pub fn bind(
    pid: i32,
    source: &Path,
    target: &Path,
    readonly: bool,
    idmap: bool,
    recursive: bool,
    owner: Option<(u32, u32)>,
) -> Result<(), String> {
    let is_dir = std::fs::metadata(source)
        .map_err(|e| format!("{}: {e}", source.display()))?
        .is_dir();
    let tree = warren_sys::open_tree_clone_with(source, recursive)
        .map_err(|e| format!("clone the mount of {}: {e}", source.display()))?;
    if idmap {
        let userns = open_ns(pid, "user")?;
        warren_sys::set_tree_attr(tree.as_fd(), Some(userns.as_fd()), recursive)
            .map_err(|e| format!("idmapped mount of {}: {e}", source.display()))?;
    } else {
        warren_sys::set_tree_attr(tree.as_fd(), None, recursive)
            .map_err(|e| format!("mount of {}: {e}", source.display()))?;
    }
    let root_ids = container_root_ids(pid);
    enter_mount_ns(pid)?;
    // the target, made inside the container (its root is ours now: nothing resolves outside it)
    let rel = target.strip_prefix("/").unwrap_or(target);
    if !rel.as_os_str().is_empty() {
        let t = Path::new("/").join(rel);
        let existed = t.exists();
        let make = || -> std::io::Result<()> {
            if let Some(parent) = t.parent() {
                std::fs::create_dir_all(parent)?;
            }
            if t.exists() {
                return Ok(());
            }
            if is_dir {
                std::fs::create_dir(&t)
            } else {
                std::fs::File::create(&t).map(|_| ())
            }
        };
        let made = match make() {
            // a filesystem the container mounted in its user namespace (its /dev tmpfs) takes
            // no file owned by an id it doesn't map, such as the host's root: made as the
            // container's root instead
            Err(e) if e.raw_os_error() == Some(libc::EOVERFLOW) => {
                let (uid, gid) = root_ids;
                nix::unistd::setfsgid(nix::unistd::Gid::from_raw(gid));
                nix::unistd::setfsuid(nix::unistd::Uid::from_raw(uid));
                let again = make();
                nix::unistd::setfsuid(nix::unistd::Uid::from_raw(0));
                nix::unistd::setfsgid(nix::unistd::Gid::from_raw(0));
                again
            }
            other => other,
        };
        made.map_err(|e| format!("make {} in the container: {e}", t.display()))?;
        if let (Some((u, g)), false) = (owner, existed) {
            let _ = std::os::unix::fs::chown(&t, Some(u), Some(g));
        }
    }
    let target_fd = nix::fcntl::open(
        &Path::new("/").join(rel),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NOFOLLOW,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("{} in the container: {e}", target.display()))?;
    warren_sys::move_mount_onto(tree.as_fd(), target_fd.as_fd())
        .map_err(|e| format!("attach {} at {}: {e}", source.display(), target.display()))?;
    if readonly {
        nix::mount::mount(
            None::<&str>,
            &Path::new("/").join(rel),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND
                | nix::mount::MsFlags::MS_REMOUNT
                | nix::mount::MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| format!("make {} read-only: {e}", target.display()))?;
    }
    Ok(())
}

/// Unmounts `target` inside the running container `pid` (lazily: files in use stay readable).
pub fn unmount(pid: i32, target: &Path) -> Result<(), String> {
    enter_mount_ns(pid)?;
    let t = Path::new("/").join(target.strip_prefix("/").unwrap_or(target));
    match nix::mount::umount2(&t, nix::mount::MntFlags::MNT_DETACH) {
        // nothing mounted there (an optional source that was missing): nothing to remove
        Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        other => other.map_err(|e| format!("unmount {} in the container: {e}", t.display())),
    }
}
