//! The build sandbox: package-manager commands and action scripts run inside the rootfs in new
//! mount, pid, uts and ipc namespaces, behind pivot_root, with /proc and /sys read-only, a minimal
//! /dev (null, zero, full, random, urandom, tty bound from the host, a private devpts), tmpfs /run
//! and /tmp, and the host's resolv.conf bound read-only. Every mount dies with the sandbox, and so
//! does every process the command leaves behind (pid 1 exits).

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use warren_sys::Forked;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox: {0}")]
    Setup(String),
    #[error("{what} failed in the rootfs with exit status {code}")]
    Failed { what: String, code: i32 },
}

/// What to run.
pub enum Program<'a> {
    /// argv, looked up in the rootfs's PATH.
    Argv(&'a [String]),
    /// A script with its own `#!` line (the interpreter must exist in the rootfs).
    Script(&'a str),
}

/// Runs `program` in `rootfs` with exactly `env`; returns an error naming `what` if it fails.
pub fn run(
    rootfs: &Path,
    program: Program<'_>,
    env: &[(String, String)],
    what: &str,
) -> Result<(), SandboxError> {
    let rootfs = std::fs::canonicalize(rootfs)
        .map_err(|e| SandboxError::Setup(format!("{}: {e}", rootfs.display())))?;
    // Everything the child needs is prepared here: after the clone it only makes syscalls.
    let argv: Vec<CString> = match &program {
        Program::Argv(a) => a.iter().map(|s| cstring(s)).collect::<Result<_, _>>()?,
        Program::Script(_) => Vec::new(),
    };
    let script = match &program {
        Program::Script(s) => Some(memfd_with(s.as_bytes())?),
        Program::Argv(_) => None,
    };
    let envp: Vec<CString> = env
        .iter()
        .map(|(k, v)| cstring(&format!("{k}={v}")))
        .collect::<Result<_, _>>()?;
    let host_nodes: Vec<&str> = ["null", "zero", "full", "random", "urandom", "tty"]
        .into_iter()
        .filter(|n| PathBuf::from("/dev").join(n).exists())
        .collect();
    let resolv = std::fs::canonicalize("/etc/resolv.conf")
        .ok()
        .filter(|p| p.is_file());

    let flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    match warren_sys::clone_namespaces(flags)
        .map_err(|e| SandboxError::Setup(format!("clone: {e}")))?
    {
        Forked::Child => {
            let code = match sandbox_init(
                &rootfs,
                &argv,
                script.as_ref(),
                &envp,
                &host_nodes,
                resolv.as_ref(),
            ) {
                Ok(code) => code,
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "warren-build: sandbox: {e}");
                    125
                }
            };
            warren_sys::exit_now(code);
        }
        Forked::Parent(pid) => {
            let code = wait_code(Pid::from_raw(pid))
                .map_err(|e| SandboxError::Setup(format!("wait: {e}")))?;
            match code {
                0 => Ok(()),
                125 => Err(SandboxError::Setup(format!(
                    "{what}: the sandbox could not be set up (see above)"
                ))),
                code => Err(SandboxError::Failed {
                    what: what.to_string(),
                    code,
                }),
            }
        }
    }
}

fn cstring(s: &str) -> Result<CString, SandboxError> {
    CString::new(s).map_err(|_| SandboxError::Setup(format!("\"{s}\" contains a NUL byte")))
}

fn memfd_with(data: &[u8]) -> Result<OwnedFd, SandboxError> {
    // Not CLOEXEC: the kernel hands the script to its interpreter as /proc/self/fd/N.
    let fd =
        nix::sys::memfd::memfd_create(c"warren-build-action", nix::sys::memfd::MFdFlags::empty())
            .map_err(|e| SandboxError::Setup(format!("memfd_create: {e}")))?;
    let mut f = std::fs::File::from(fd);
    f.write_all(data)
        .map_err(|e| SandboxError::Setup(format!("write script: {e}")))?;
    Ok(OwnedFd::from(f))
}

fn wait_code(pid: Pid) -> nix::Result<i32> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

fn sys<T>(what: &str, r: nix::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// Pid 1 of the sandbox: mounts, runs the command, undoes what it changed in the rootfs, exits.
fn sandbox_init(
    rootfs: &Path,
    argv: &[CString],
    script: Option<&OwnedFd>,
    envp: &[CString],
    host_node_names: &[&str],
    resolv_path: Option<&PathBuf>,
) -> Result<i32, String> {
    let none: Option<&str> = None;
    sys(
        "make / private",
        mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none),
    )?;
    // Detached copies of the host's device nodes and resolv.conf, attached inside after pivot_root.
    let clone = |p: &Path| {
        warren_sys::open_tree_clone(p).map_err(|e| format!("open_tree {}: {e}", p.display()))
    };
    let mut host_nodes: Vec<(&str, OwnedFd)> = Vec::new();
    for n in host_node_names {
        host_nodes.push((n, clone(&Path::new("/dev").join(n))?));
    }
    let resolv = match resolv_path {
        Some(p) => Some(clone(p)?),
        None => None,
    };
    let resolv = resolv.as_ref();
    sys(
        "bind the rootfs",
        mount(
            Some(rootfs),
            rootfs,
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        ),
    )?;
    sys("chdir rootfs", nix::unistd::chdir(rootfs))?;
    sys("pivot_root", nix::unistd::pivot_root(".", "."))?;
    sys("detach the host", umount2(".", MntFlags::MNT_DETACH))?;
    sys("chdir /", nix::unistd::chdir("/"))?;
    // From here on every path resolves inside the rootfs: `/` is the rootfs.
    for d in ["/proc", "/sys", "/dev", "/tmp", "/run"] {
        ensure_dir(d)?;
    }
    let nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    sys(
        "mount /proc",
        mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            nodev | MsFlags::MS_RDONLY,
            none,
        ),
    )?;
    sys(
        "mount /sys",
        mount(
            Some("sysfs"),
            "/sys",
            Some("sysfs"),
            nodev | MsFlags::MS_RDONLY,
            none,
        ),
    )?;
    sys(
        "mount /dev",
        mount(
            Some("tmpfs"),
            "/dev",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("mode=755,size=1m"),
        ),
    )?;
    for (name, fd) in &host_nodes {
        let target = format!("/dev/{name}");
        std::fs::File::create(&target).map_err(|e| format!("create {target}: {e}"))?;
        warren_sys::move_mount_to(fd.as_fd(), Path::new(&target))
            .map_err(|e| format!("attach {target}: {e}"))?;
    }
    ensure_dir("/dev/pts")?;
    sys(
        "mount /dev/pts",
        mount(
            Some("devpts"),
            "/dev/pts",
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        ),
    )?;
    ensure_dir("/dev/shm")?;
    sys(
        "mount /dev/shm",
        mount(
            Some("tmpfs"),
            "/dev/shm",
            Some("tmpfs"),
            nodev,
            Some("mode=1777"),
        ),
    )?;
    for (link, target) in [
        ("/dev/ptmx", "pts/ptmx"),
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        let _ = std::os::unix::fs::symlink(target, link);
    }
    sys(
        "mount /run",
        mount(
            Some("tmpfs"),
            "/run",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=755"),
        ),
    )?;
    sys(
        "mount /tmp",
        mount(
            Some("tmpfs"),
            "/tmp",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        ),
    )?;
    let _ = nix::unistd::sethostname("distrobuilder");

    // resolv.conf: the host's, read-only, over the rootfs's own (set aside and put back after).
    let mut undo_resolv: Option<bool> = None; // Some(moved_aside)
    if let Some(fd) = resolv {
        if std::fs::symlink_metadata("/etc")
            .map(|m| m.is_dir())
            .unwrap_or(false)
        {
            let existing = std::fs::symlink_metadata("/etc/resolv.conf");
            let moved = match existing {
                Ok(m) if m.is_file() => false,
                Ok(_) => {
                    std::fs::rename("/etc/resolv.conf", "/etc/resolv.conf.warren-build")
                        .map_err(|e| format!("set /etc/resolv.conf aside: {e}"))?;
                    true
                }
                Err(_) => true,
            };
            if moved {
                std::fs::File::create("/etc/resolv.conf")
                    .map_err(|e| format!("create /etc/resolv.conf: {e}"))?;
            }
            warren_sys::move_mount_to(fd.as_fd(), Path::new("/etc/resolv.conf"))
                .map_err(|e| format!("attach resolv.conf: {e}"))?;
            let _ = mount(
                none,
                "/etc/resolv.conf",
                none,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                none,
            );
            undo_resolv = Some(moved);
        }
    }
    // Package scripts must not start services in the build (Debian's policy-rc.d convention).
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let made_policy = std::fs::symlink_metadata("/usr/sbin")
        .map(|m| m.is_dir())
        .unwrap_or(false)
        && std::fs::symlink_metadata(policy).is_err()
        && {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o755)
                .open(policy)
                .and_then(|mut f| f.write_all(b"#!/bin/sh\nexit 101\n"))
                .is_ok()
        };

    let code = match warren_sys::fork_process().map_err(|e| format!("fork: {e}"))? {
        Forked::Child => {
            let _ = nix::unistd::setsid();
            let err = match script {
                Some(fd) => {
                    let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                        .unwrap_or_default();
                    nix::unistd::execve(&path, std::slice::from_ref(&path), envp).err()
                }
                None => match argv.first() {
                    Some(prog) => nix::unistd::execvpe(prog, argv, envp).err(),
                    None => None,
                },
            };
            let _ = writeln!(
                std::io::stderr(),
                "warren-build: can't run the command in the rootfs: {}",
                err.map(|e| e.to_string()).unwrap_or_default()
            );
            warren_sys::exit_now(127);
        }
        Forked::Parent(pid) => wait_code(Pid::from_raw(pid)).map_err(|e| format!("wait: {e}"))?,
    };

    if made_policy {
        let _ = std::fs::remove_file(policy);
    }
    if let Some(moved) = undo_resolv {
        // Still our bind mount unless the command unmounted it (lxc-ci's post-files does, to
        // replace resolv.conf with a symlink): then what it left is kept.
        let ours = std::fs::read_to_string("/proc/self/mountinfo")
            .map(|m| {
                m.lines()
                    .any(|l| l.split(' ').nth(4) == Some("/etc/resolv.conf"))
            })
            .unwrap_or(false);
        if ours {
            let _ = umount2("/etc/resolv.conf", MntFlags::MNT_DETACH);
        }
        if moved {
            let placeholder = std::fs::symlink_metadata("/etc/resolv.conf")
                .map(|m| m.is_file() && m.len() == 0)
                .unwrap_or(false);
            if ours || placeholder {
                let _ = std::fs::remove_file("/etc/resolv.conf");
                if std::fs::symlink_metadata("/etc/resolv.conf.warren-build").is_ok() {
                    let _ = std::fs::rename("/etc/resolv.conf.warren-build", "/etc/resolv.conf");
                }
            } else {
                let _ = std::fs::remove_file("/etc/resolv.conf.warren-build");
            }
        }
    }
    Ok(code)
}

fn ensure_dir(path: &str) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("{path} in the rootfs is not a directory")),
        Err(_) => std::fs::create_dir_all(path).map_err(|e| format!("mkdir {path}: {e}")),
    }
}

/// Runs `f` in a child process chrooted into `rootfs`, so every path it touches resolves inside
/// the rootfs (a symlink to /etc/passwd there means the rootfs's /etc/passwd), and returns its
/// result. The builder's own file work on a rootfs (generators) goes through this.
pub fn in_root<T, F>(rootfs: &Path, f: F) -> Result<T, SandboxError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    let (read_end, write_end) =
        nix::unistd::pipe().map_err(|e| SandboxError::Setup(format!("pipe: {e}")))?;
    match warren_sys::fork_process().map_err(|e| SandboxError::Setup(format!("fork: {e}")))? {
        Forked::Child => {
            drop(read_end);
            let result: Result<T, String> = nix::unistd::chroot(rootfs)
                .map_err(|e| format!("chroot {}: {e}", rootfs.display()))
                .and_then(|_| nix::unistd::chdir("/").map_err(|e| format!("chdir: {e}")))
                .and_then(|_| f());
            let mut out = std::fs::File::from(write_end);
            let text = serde_json::to_vec(&result).unwrap_or_default();
            let _ = out.write_all(&text);
            drop(out);
            warren_sys::exit_now(0);
        }
        Forked::Parent(pid) => {
            drop(write_end);
            let mut text = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::fs::File::from(read_end), &mut text);
            let code = wait_code(Pid::from_raw(pid))
                .map_err(|e| SandboxError::Setup(format!("wait: {e}")))?;
            let result: Result<T, String> = serde_json::from_slice(&text).map_err(|_| {
                SandboxError::Setup(format!("the rootfs worker died (status {code})"))
            })?;
            result.map_err(SandboxError::Setup)
        }
    }
}
