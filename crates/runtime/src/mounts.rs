//! The container's filesystem view, built inside its new mount namespace: rootfs bind, autodev,
//! `lxc.mount.auto`, mount entries, devpts, console and tty binds, then pivot_root.
//!
//! Every target inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT) and mounted through its
//! /proc/self/fd path, so a symlink in the rootfs can never redirect a mount onto the host.

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mkdirat, mknod, Mode, SFlag};
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use crate::spec::{CgroupAccess, ContainerSpec, MountEntry, ProcMode, SysMode};

/// A failed mount step, naming what was being mounted where.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("mount entry \"{entry}\": {why}")]
    Entry { entry: String, why: String },
}

fn sys_err(what: impl Into<String>) -> impl FnOnce(nix::errno::Errno) -> MountError {
    let what = what.into();
    move |e| MountError::Sys {
        what,
        source: std::io::Error::from(e),
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> MountError {
    let what = what.into();
    move |source| MountError::Sys { what, source }
}

/// An open rootfs: the directory every container path is resolved beneath.
pub struct Rootfs {
    pub path: PathBuf,
    fd: OwnedFd,
}

/// Normalise a container path to a relative one (`/dev/console` -> `dev/console`), refusing `..`
/// components that would climb out (RESOLVE_IN_ROOT would clamp them anyway; we refuse them so the
/// user learns the entry is wrong).
pub fn container_relative(path: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(p) => out.push(p),
            Component::ParentDir => return Err(format!("\"{}\" contains \"..\"", path.display())),
            Component::Prefix(_) => {
                return Err(format!("\"{}\" is not a Linux path", path.display()))
            }
        }
    }
    Ok(out)
}

impl Rootfs {
    pub fn open(path: &Path) -> Result<Rootfs, MountError> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys_err(format!("open rootfs {}", path.display())))?;
        Ok(Rootfs {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// Open `rel` beneath the rootfs, never leaving it (symlinks resolve as inside the container).
    pub fn open_in(&self, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let mut how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        if flags.contains(OFlag::O_CREAT) {
            // openat2 refuses a mode without O_CREAT
            how = how.mode(Mode::from_bits_truncate(0o644));
        }
        openat2(&self.fd, rel, how)
    }

    /// `mkdir -p` beneath the rootfs, one component at a time, each resolved inside it.
    pub fn mkdir_all(&self, rel: &Path, mode: u32) -> Result<(), MountError> {
        // The usual case first: the parent exists (/sys/fs/cgroup for each hierarchy's
        // directory, /dev for dev/pts), and one open and one mkdir do.
        if let (Some(parent), Some(Component::Normal(name))) =
            (rel.parent(), rel.components().next_back())
        {
            if let Ok(dir) = self.open_in(parent, OFlag::O_PATH | OFlag::O_DIRECTORY) {
                match mkdirat(&dir, name, Mode::from_bits_truncate(mode)) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => return Ok(()),
                    // (the walk below reports it, naming the component)
                    Err(_) => {}
                }
            }
        }
        let mut cur = PathBuf::new();
        for comp in rel.components() {
            let Component::Normal(name) = comp else {
                continue;
            };
            let parent = self
                .open_in(&cur, OFlag::O_PATH | OFlag::O_DIRECTORY)
                .map_err(sys_err(format!("open {} in rootfs", cur.display())))?;
            match mkdirat(&parent, name, Mode::from_bits_truncate(mode)) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => {
                    return Err(sys_err(format!(
                        "mkdir {} in rootfs",
                        cur.join(name).display()
                    ))(e))
                }
            }
            cur.push(name);
        }
        Ok(())
    }

    /// Create an empty file (and its parents) beneath the rootfs unless something exists there.
    pub fn touch(&self, rel: &Path) -> Result<(), MountError> {
        if let Some(parent) = rel.parent() {
            self.mkdir_all(parent, 0o755)?;
        }
        match self.open_in(rel, OFlag::O_PATH) {
            Ok(_) => Ok(()),
            Err(nix::errno::Errno::ENOENT) => self
                .open_in(rel, OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW)
                .map(drop)
                .map_err(sys_err(format!("create {} in rootfs", rel.display()))),
            Err(e) => Err(sys_err(format!("open {} in rootfs", rel.display()))(e)),
        }
    }

    /// Mount onto `rel` beneath the rootfs, through the O_PATH descriptor of the resolved target.
    pub fn mount_at(
        &self,
        source: Option<&str>,
        rel: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), MountError> {
        let target = self.open_in(rel, OFlag::O_PATH).map_err(sys_err(format!(
            "resolve mount target /{} in rootfs",
            rel.display()
        )))?;
        let proc_path = format!("/proc/self/fd/{}", target.as_raw_fd());
        mount(source, proc_path.as_str(), fstype, flags, data).map_err(sys_err(format!(
            "mount {} on /{} (type {})",
            source.unwrap_or("none"),
            rel.display(),
            fstype.unwrap_or("none")
        )))
    }

    /// Bind `rel` onto itself and remount it read-only (for /proc/sys and friends).
    fn bind_ro_in_place(&self, rel: &Path, optional: bool) -> Result<(), MountError> {
        let target = match self.open_in(rel, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) if optional => return Ok(()),
            Err(e) => return Err(sys_err(format!("resolve /{}", rel.display()))(e)),
        };
        let p = format!("/proc/self/fd/{}", target.as_raw_fd());
        mount(
            Some(p.as_str()),
            p.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(sys_err(format!("bind /{}", rel.display())))?;
        // reopen: the old descriptor refers to the mount underneath the new bind
        let target = self
            .open_in(rel, OFlag::O_PATH)
            .map_err(sys_err(format!("resolve /{}", rel.display())))?;
        let p = format!("/proc/self/fd/{}", target.as_raw_fd());
        mount(
            None::<&str>,
            p.as_str(),
            None::<&str>,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(sys_err(format!("remount /{} read-only", rel.display())))
    }

    /// Bind `rel` onto itself read-write (to punch a writable hole in a read-only parent).
    fn bind_rw_in_place(&self, rel: &Path) -> Result<(), MountError> {
        let target = match self.open_in(rel, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(sys_err(format!("resolve /{}", rel.display()))(e)),
        };
        let p = format!("/proc/self/fd/{}", target.as_raw_fd());
        mount(
            Some(p.as_str()),
            p.as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys_err(format!("bind /{}", rel.display())))?;
        // the bind inherits the read-only flag of the parent mount: clear it with a remount
        let target = self
            .open_in(rel, OFlag::O_PATH)
            .map_err(sys_err(format!("resolve /{}", rel.display())))?;
        let p = format!("/proc/self/fd/{}", target.as_raw_fd());
        mount(
            None::<&str>,
            p.as_str(),
            None::<&str>,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(sys_err(format!("remount /{} read-write", rel.display())))
    }
}

/// Mount options split into kernel flags, fs data and LXC's own options.
#[derive(Debug, PartialEq)]
pub struct ParsedOptions {
    pub flags: MsFlags,
    /// Propagation flags, applied in a separate mount(2) call as the kernel requires.
    pub propagation: MsFlags,
    pub data: Vec<String>,
    pub create_dir: bool,
    pub create_file: bool,
    pub optional: bool,
    pub relative: bool,
    /// `idmap=container`: a bind whose files show with the container's ids (an idmapped mount the
    /// monitor makes, as LXC's option does).
    pub idmap: bool,
    /// `nofollow` (warren's own): a bind source resolved without following any symlink, so a
    /// path checked earlier can't be swapped for a symlink leading elsewhere before the mount
    /// (warrend adds it to the disks of restricted projects).
    pub nofollow: bool,
}

/// Split mount options as LXC does.
pub fn parse_options(options: &[String]) -> ParsedOptions {
    let mut p = ParsedOptions {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: Vec::new(),
        create_dir: false,
        create_file: false,
        optional: false,
        relative: false,
        idmap: false,
        nofollow: false,
    };
    for opt in options.iter().flat_map(|o| o.split(',')) {
        let opt = opt.trim();
        let (set, clear) = match opt {
            "" | "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "optional" => {
                p.optional = true;
                continue;
            }
            "relative" => {
                p.relative = true;
                continue;
            }
            "create=dir" => {
                p.create_dir = true;
                continue;
            }
            "create=file" => {
                p.create_file = true;
                continue;
            }
            "idmap=container" => {
                p.idmap = true;
                continue;
            }
            "nofollow" => {
                p.nofollow = true;
                continue;
            }
            "private" | "slave" | "shared" | "unbindable" | "rprivate" | "rslave" | "rshared"
            | "runbindable" => {
                let rec = opt.starts_with('r');
                let base = match opt.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "slave" => MsFlags::MS_SLAVE,
                    "shared" => MsFlags::MS_SHARED,
                    _ => MsFlags::MS_UNBINDABLE,
                };
                p.propagation |= base;
                if rec {
                    p.propagation |= MsFlags::MS_REC;
                }
                continue;
            }
            other => {
                p.data.push(other.to_string());
                continue;
            }
        };
        p.flags |= set;
        p.flags &= !clear;
    }
    p
}

/// Where a mount entry's target lies inside the rootfs. Absolute targets that start with the
/// rootfs's host path are taken relative to it (LXC configs often spell them that way).
pub fn entry_target(
    rootfs: &Path,
    mount_point: Option<&Path>,
    target: &Path,
) -> Result<PathBuf, String> {
    for prefix in [Some(rootfs), mount_point].into_iter().flatten() {
        if let Ok(rest) = target.strip_prefix(prefix) {
            return container_relative(rest);
        }
    }
    container_relative(target)
}

/// Apply one `lxc.mount.entry`.
/// `idmapped`: for an `idmap=container` bind, the monitor's idmapped copy of its source, attached
/// at the target instead of a plain bind.
pub fn mount_entry(
    root: &Rootfs,
    spec: &ContainerSpec,
    entry: &MountEntry,
    idmapped: Option<OwnedFd>,
) -> Result<(), MountError> {
    let opts = parse_options(&entry.options);
    let line = format!(
        "{} {} {} {}",
        entry.source,
        entry.target.display(),
        entry.fstype,
        entry.options.join(",")
    );
    let rel =
        entry_target(&root.path, spec.rootfs.mount.as_deref(), &entry.target).map_err(|why| {
            MountError::Entry {
                entry: line.clone(),
                why,
            }
        })?;
    let result = (|| {
        if opts.create_dir {
            root.mkdir_all(&rel, 0o755)?;
        }
        if opts.create_file {
            root.touch(&rel)?;
        }
        let is_bind = opts.flags.contains(MsFlags::MS_BIND);
        let fstype = if is_bind || entry.fstype == "none" {
            None
        } else {
            Some(entry.fstype.as_str())
        };
        let data = if opts.data.is_empty() {
            None
        } else {
            Some(opts.data.join(","))
        };
        // a relative bind source lives in the rootfs: resolve it there, never through its symlinks
        // onto the host (the descriptor is kept until the mount is done)
        let relative_src = if is_bind && opts.relative {
            let rel_src =
                container_relative(Path::new(&entry.source)).map_err(|why| MountError::Entry {
                    entry: line.clone(),
                    why,
                })?;
            Some(
                root.open_in(&rel_src, OFlag::O_PATH)
                    .map_err(sys_err(format!("resolve /{} in rootfs", rel_src.display())))?,
            )
        } else {
            None
        };
        // `nofollow`: the host path opened without following a symlink anywhere in it
        let pinned_src = if is_bind && opts.nofollow && relative_src.is_none() {
            Some(
                open_source_nofollow(&entry.source).map_err(|e| MountError::Entry {
                    entry: line.clone(),
                    why: e,
                })?,
            )
        } else {
            None
        };
        let source = match relative_src.as_ref().or(pinned_src.as_ref()) {
            Some(fd) => format!("/proc/self/fd/{}", fd.as_raw_fd()),
            None => entry.source.clone(),
        };
        if let Some(tree) = idmapped.as_ref().filter(|_| is_bind) {
            let target = root.open_in(&rel, OFlag::O_PATH).map_err(sys_err(format!(
                "resolve mount target /{} in rootfs",
                rel.display()
            )))?;
            use std::os::fd::AsFd;
            warren_sys::move_mount_onto(tree.as_fd(), target.as_fd()).map_err(io_err(format!(
                "attach the idmapped {} on /{}",
                entry.source,
                rel.display()
            )))?;
        } else if is_bind {
            let base = opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
            root.mount_at(Some(&source), &rel, None, base, None)?;
        }
        if is_bind {
            let rest = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
            if !rest.is_empty() {
                // bind mounts ignore other flags on the first call; they need a remount
                root.mount_at(
                    None,
                    &rel,
                    None,
                    rest | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                    None,
                )?;
            }
        } else {
            root.mount_at(Some(&source), &rel, fstype, opts.flags, data.as_deref())?;
        }
        if !opts.propagation.is_empty() {
            root.mount_at(None, &rel, None, opts.propagation, None)?;
        }
        Ok(())
    })();
    match result {
        Err(e) if opts.optional => {
            crate::info!("skipping optional mount entry \"{line}\": {e}");
            Ok(())
        }
        Err(e) => Err(match e {
            MountError::Sys { what, source } => MountError::Entry {
                entry: line,
                why: format!("{what}: {source}"),
            },
            other => other,
        }),
        Ok(()) => Ok(()),
    }
}

/// A bind source with the `nofollow` option: an absolute host path opened (O_PATH) without
/// following any symlink in it; a symlink anywhere is refused, saying so.
pub fn open_source_nofollow(source: &str) -> Result<OwnedFd, String> {
    if !source.starts_with('/') {
        return Err(format!(
            "nofollow needs an absolute source path, not {source}"
        ));
    }
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    openat2(nix::fcntl::AT_FDCWD, Path::new(source), how).map_err(|e| {
        if e == nix::errno::Errno::ELOOP {
            format!("source {source} has a symlink in its path, which nofollow refuses")
        } else {
            format!("open source {source}: {e}")
        }
    })
}

/// The first step in the new mount namespace: stop propagation to the host, and make the rootfs
/// a mount point of its own (pivot_root needs one).
/// `idmapped`: for a container with a user namespace, the monitor's idmapped copy of the rootfs
/// mount, attached here instead of a plain bind.
pub fn prepare_rootfs(
    spec: &ContainerSpec,
    idmapped: Option<OwnedFd>,
) -> Result<Rootfs, MountError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(sys_err("make / a recursive slave"))?;
    let path = &spec.rootfs.path;
    if let Some(tree) = idmapped {
        // In a user namespace the path to the rootfs may not be searchable by the container's
        // root (a host uid); the monitor made the rootfs our working directory before cloning,
        // so attach the idmapped copy on "." and keep its descriptor as the rootfs.
        warren_sys::move_mount_to(std::os::fd::AsFd::as_fd(&tree), Path::new(".")).map_err(
            io_err(format!("attach the idmapped rootfs on {}", path.display())),
        )?;
        return Ok(Rootfs {
            path: path.clone(),
            fd: tree,
        });
    }
    let meta = fs::metadata(path).map_err(io_err(format!("rootfs {}", path.display())))?;
    if !meta.is_dir() {
        return Err(MountError::Sys {
            what: format!("rootfs {}", path.display()),
            source: std::io::Error::other("not a directory"),
        });
    }
    mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys_err(format!("bind rootfs {}", path.display())))?;
    let opts = parse_options(&spec.rootfs.options);
    let rest = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
    if !rest.is_empty() {
        mount(
            None::<&str>,
            path,
            None::<&str>,
            rest | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(sys_err(format!(
            "remount rootfs {} with its options",
            path.display()
        )))?;
    }
    Rootfs::open(path)
}

/// `lxc.autodev`: a fresh tmpfs on /dev.
pub fn mount_autodev(root: &Rootfs) -> Result<(), MountError> {
    root.mkdir_all(Path::new("dev"), 0o755)?;
    root.mount_at(
        Some("none"),
        Path::new("dev"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_STRICTATIME,
        Some("size=500000,mode=755"),
    )?;
    root.mkdir_all(Path::new("dev/pts"), 0o755)
}

/// The standard device nodes of an autodev /dev, and its symlinks.
pub fn populate_dev(root: &Rootfs) -> Result<(), MountError> {
    const NODES: [(&str, u64, u64); 6] = [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("urandom", 1, 9),
        ("random", 1, 8),
        ("tty", 5, 0),
    ];
    let dev = root
        .open_in(Path::new("dev"), OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(sys_err("open /dev in rootfs"))?;
    let devpath = format!("/proc/self/fd/{}", dev.as_raw_fd());
    let old = nix::sys::stat::umask(Mode::empty());
    for (name, major, minor) in NODES {
        let p = format!("{devpath}/{name}");
        match mknod(
            p.as_str(),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(major, minor),
        ) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(nix::errno::Errno::EPERM) => {
                // in a user namespace mknod is refused: bind the host's node instead
                let _ = fs::File::create(&p);
                mount(
                    Some(format!("/dev/{name}").as_str()),
                    p.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(sys_err(format!("bind /dev/{name}")))?;
            }
            Err(e) => return Err(sys_err(format!("mknod /dev/{name}"))(e)),
        }
    }
    nix::sys::stat::umask(old);
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        match nix::unistd::symlinkat(target, &dev, link) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(sys_err(format!("symlink /dev/{link}"))(e)),
        }
    }
    Ok(())
}

/// A private devpts instance on /dev/pts, and /dev/ptmx pointing into it.
pub fn mount_devpts(root: &Rootfs, pty_max: u32, autodev: bool) -> Result<(), MountError> {
    root.mkdir_all(Path::new("dev/pts"), 0o755)?;
    let mut data = "newinstance,ptmxmode=0666,mode=0620,gid=5".to_string();
    if pty_max > 0 {
        data.push_str(&format!(",max={pty_max}"));
    }
    root.mount_at(
        Some("devpts"),
        Path::new("dev/pts"),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(&data),
    )?;
    if !autodev {
        // a static /dev: make its ptmx the new instance's (bind over a node or a file)
        if root
            .open_in(Path::new("dev/ptmx"), OFlag::O_PATH | OFlag::O_NOFOLLOW)
            .is_ok()
        {
            let src = root
                .open_in(Path::new("dev/pts/ptmx"), OFlag::O_PATH)
                .map_err(sys_err("open /dev/pts/ptmx"))?;
            let src = format!("/proc/self/fd/{}", src.as_raw_fd());
            let _ = root.mount_at(
                Some(&src),
                Path::new("dev/ptmx"),
                None,
                MsFlags::MS_BIND,
                None,
            );
        }
    }
    Ok(())
}

/// A new pty from the container's devpts instance (mounted on dev/pts): (master, slave).
pub fn container_pty(root: &Rootfs) -> Result<(OwnedFd, OwnedFd), MountError> {
    let master = root
        .open_in(Path::new("dev/pts/ptmx"), OFlag::O_RDWR | OFlag::O_NOCTTY)
        .map_err(sys_err("open the container's /dev/pts/ptmx"))?;
    warren_sys::unlock_pty(std::os::fd::AsFd::as_fd(&master)).map_err(io_err("unlock a pty"))?;
    let slave = warren_sys::open_pty_peer(std::os::fd::AsFd::as_fd(&master))
        .map_err(io_err("open a pty's slave"))?;
    Ok((master, slave))
}

/// Bind a pty slave (an open descriptor of the container's devpts) onto a file in its /dev.
pub fn bind_tty(root: &Rootfs, slave: &OwnedFd, rel: &Path) -> Result<(), MountError> {
    root.touch(rel)?;
    let src = format!("/proc/self/fd/{}", slave.as_raw_fd());
    root.mount_at(Some(&src), rel, None, MsFlags::MS_BIND, None)
}

/// Make `rel` (in the rootfs's /dev) a symlink to `target`, replacing a file or node there.
pub fn replace_with_symlink(root: &Rootfs, rel: &Path, target: &str) -> Result<(), MountError> {
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel.file_name().ok_or_else(|| MountError::Sys {
        what: format!("symlink /{}", rel.display()),
        source: std::io::Error::other("no file name"),
    })?;
    root.mkdir_all(parent, 0o755)?;
    let dir = root
        .open_in(parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(sys_err(format!("open /{}", parent.display())))?;
    match nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(sys_err(format!("remove /{}", rel.display()))(e)),
    }
    nix::unistd::symlinkat(target, &dir, name)
        .map_err(sys_err(format!("symlink /{}", rel.display())))
}

/// `proc:mixed` / `proc:rw`.
pub fn mount_proc(root: &Rootfs, mode: ProcMode, own_netns: bool) -> Result<(), MountError> {
    root.mkdir_all(Path::new("proc"), 0o555)?;
    root.mount_at(
        Some("proc"),
        Path::new("proc"),
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )?;
    if mode == ProcMode::Mixed {
        root.bind_ro_in_place(Path::new("proc/sys"), false)?;
        if own_netns {
            // the container's own network stack stays configurable
            let _ = root.bind_rw_in_place(Path::new("proc/sys/net"));
        }
        root.bind_ro_in_place(Path::new("proc/sysrq-trigger"), true)?;
    }
    Ok(())
}

/// `sys:mixed` / `sys:ro` / `sys:rw`. Read-only by default because systemd treats a writable /sys
/// as "udev works here" (DESIGN.md, systemd in containers).
/// Returns whether sysfs was mounted fresh (false: the host's /sys was bound, submounts and all).
pub fn mount_sys(root: &Rootfs, mode: SysMode, own_netns: bool) -> Result<bool, MountError> {
    root.mkdir_all(Path::new("sys"), 0o555)?;
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if mode != SysMode::Rw {
        flags |= MsFlags::MS_RDONLY;
    }
    // a fresh sysfs shows the network devices of the namespace we are in (our own, or the one
    // we share), and none of the host's submounts (securityfs, debugfs, cgroup)
    let mut fresh = true;
    match root.mount_at(Some("sysfs"), Path::new("sys"), Some("sysfs"), flags, None) {
        Ok(()) => {}
        Err(MountError::Sys { source, .. }) if source.raw_os_error() == Some(libc::EPERM) => {
            // a user namespace that doesn't own its network namespace may not mount sysfs:
            // bind the host's /sys (recursively: a user namespace may not split off locked
            // submounts) and make the top of the bind read-only
            fresh = false;
            // (recursive: a user namespace may not bind a mount without the mounts locked on it)
            root.mount_at(
                Some("/sys"),
                Path::new("sys"),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
            if mode != SysMode::Rw {
                // the remount must keep the flags locked on the host's mount (atime included)
                root.mount_at(
                    None,
                    Path::new("sys"),
                    None,
                    flags | MsFlags::MS_RELATIME | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                    None,
                )?;
            }
        }
        Err(e) => return Err(e),
    }
    if mode == SysMode::Mixed && own_netns {
        let _ = root.bind_rw_in_place(Path::new("sys/devices/virtual/net"));
    }
    Ok(fresh)
}

/// `cgroup:*`: the container's view of the cgroup hierarchies. With a cgroup namespace each mount's
/// root is the container's own cgroup, which is what "mixed" asks for.
pub fn mount_cgroups(
    root: &Rootfs,
    access: CgroupAccess,
    layout: &[(String, String, bool)],
) -> Result<(), MountError> {
    // layout: (mount dir name under /sys/fs/cgroup, options, is_cgroup2)
    let base = Path::new("sys/fs/cgroup");
    if root
        .open_in(base, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .is_err()
    {
        // sysfs not mounted (or no such dir): nothing to mount onto
        return Ok(());
    }
    let ro = access == CgroupAccess::Ro;
    let rw_flags =
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME;
    let leaf_flags = if ro {
        rw_flags | MsFlags::MS_RDONLY
    } else {
        rw_flags
    };
    if layout.len() == 1 && layout[0].2 && layout[0].0.is_empty() {
        return root.mount_at(Some("cgroup2"), base, Some("cgroup2"), leaf_flags, None);
    }
    root.mount_at(
        Some("cgroup"),
        base,
        Some("tmpfs"),
        rw_flags,
        Some("mode=755,size=64k"),
    )?;
    for (dir, options, is_v2) in layout {
        let rel = base.join(dir);
        root.mkdir_all(&rel, 0o755)?;
        if *is_v2 {
            root.mount_at(Some("cgroup2"), &rel, Some("cgroup2"), leaf_flags, None)?;
        } else {
            root.mount_at(
                Some("cgroup"),
                &rel,
                Some("cgroup"),
                leaf_flags,
                Some(options),
            )?;
            // comounted controllers (cpu,cpuacct) get the symlinks hosts have
            if dir.contains(',') {
                for part in dir.split(',') {
                    let _ = nix::unistd::symlinkat(
                        dir.as_str(),
                        &root
                            .open_in(base, OFlag::O_PATH | OFlag::O_DIRECTORY)
                            .map_err(sys_err("open /sys/fs/cgroup"))?,
                        part,
                    );
                }
            }
        }
    }
    // the tmpfs itself is read-only once populated
    root.mount_at(
        None,
        base,
        None,
        rw_flags | MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT,
        Some("mode=755,size=64k"),
    )
}

/// pivot_root into the rootfs and detach the old root.
pub fn pivot(root: &Rootfs) -> Result<(), MountError> {
    nix::unistd::fchdir(&root.fd).map_err(sys_err("chdir into rootfs"))?;
    // pivot_root(".", ".") stacks the old root under the new one; detaching "." then drops it
    // without needing a put_old directory inside the container.
    nix::unistd::pivot_root(".", ".").map_err(sys_err("pivot_root"))?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(sys_err("make old root a slave"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys_err("detach old root"))?;
    nix::unistd::chdir("/").map_err(sys_err("chdir /"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_like_lxc() {
        let p = parse_options(&["ro,bind,create=file,optional".to_string()]);
        assert!(p.flags.contains(MsFlags::MS_BIND | MsFlags::MS_RDONLY));
        assert!(p.create_file && p.optional && !p.create_dir);
        let p = parse_options(&["defaults,size=10m,mode=1777".to_string()]);
        assert_eq!(p.flags, MsFlags::empty());
        assert_eq!(p.data, vec!["size=10m", "mode=1777"]);
        let p = parse_options(&["rbind,rslave".to_string()]);
        assert!(p.flags.contains(MsFlags::MS_REC));
        assert!(p.propagation.contains(MsFlags::MS_SLAVE | MsFlags::MS_REC));
    }

    #[test]
    fn targets_stay_inside_rootfs() {
        let r = Path::new("/var/lib/lxc/c1/rootfs");
        assert_eq!(
            entry_target(r, None, Path::new("mnt/x")).unwrap(),
            PathBuf::from("mnt/x")
        );
        assert_eq!(
            entry_target(r, None, Path::new("/var/lib/lxc/c1/rootfs/mnt/x")).unwrap(),
            PathBuf::from("mnt/x")
        );
        assert_eq!(
            entry_target(r, None, Path::new("/dev/shm")).unwrap(),
            PathBuf::from("dev/shm")
        );
        assert!(entry_target(r, None, Path::new("../../etc")).is_err());
    }
}
