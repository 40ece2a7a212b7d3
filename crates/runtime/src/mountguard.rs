//! The mount guard of privileged containers: what AppArmor's mount rules do for LXC, done with a
//! seccomp user-notification supervisor in the monitor, so that root in a privileged container
//! stays inside on hosts without an LSM.
//!
//! Init's filter (and that of every attached process) sends `mount` and `umount2` to the
//! monitor and refuses the new mount API (ENOSYS: callers fall back to mount(2)). The monitor copies the arguments out of the caller
//! once, decides, and performs an allowed call itself from a helper that enters the caller's
//! mount namespace, root and working directory, naming the target through a descriptor, so that
//! nothing the container changes after the check can redirect the call (no TOCTOU, unlike
//! SECCOMP_USER_NOTIF_FLAG_CONTINUE). Refused:
//! - fresh mounts of filesystems that reach host state: sysfs, proc (but `subset=pid`), devtmpfs,
//!   debugfs, tracefs, securityfs, configfs, bpf, binfmt_misc, efivarfs, pstore and anything
//!   not on the allowlist below;
//! - making a proc or sysfs mount writable (remount without `ro`);
//! - a non-recursive bind of proc or sysfs (it would drop the masks stacked on them);
//! - unmounting or moving a mount stacked on proc or sysfs (the masks, /proc/sys, /sys/fs/cgroup);
//! - superblock remounts of shared filesystems: they become per-mount (bind) remounts, so a
//!   container never changes the options of a filesystem the host uses.
//!
//! Callers that are not the container's own root (no CAP_SYS_ADMIN, or in a user namespace
//! they made) get their call run by the kernel unchanged: it then checks their real privileges.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use nix::mount::{MntFlags, MsFlags};

/// seccomp's audit arch values.
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// An architecture the guard has no numbers for must not get past it.
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

/// What an intercepted call is, independent of the architecture's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardedCall {
    Mount,
    Umount2,
    /// i386's umount(target): umount2 with no flags.
    OldUmount,
}

/// The numbers of mount(2), umount2(2) and umount(2) on an architecture; the new mount API
/// (open_tree .. fspick, mount_setattr) shares its numbers across x86 architectures.
struct ArchCalls {
    arch: u32,
    mount: u32,
    umount2: u32,
    old_umount: Option<u32>,
}

const ARCHES: [ArchCalls; 4] = [
    ArchCalls {
        arch: AUDIT_ARCH_X86_64,
        mount: 165,
        umount2: 166,
        old_umount: None,
    },
    ArchCalls {
        arch: AUDIT_ARCH_I386,
        mount: 21,
        umount2: 52,
        old_umount: Some(22),
    },
    ArchCalls {
        arch: AUDIT_ARCH_AARCH64,
        mount: 40,
        umount2: 39,
        old_umount: None,
    },
    ArchCalls {
        arch: AUDIT_ARCH_ARM,
        mount: 21,
        umount2: 52,
        old_umount: None,
    },
];
const NEW_MOUNT_API: std::ops::RangeInclusive<u32> = 428..=433;
const MOUNT_SETATTR: u32 = 442;

/// The call `nr` on `arch`, if it is one the guard handles.
pub fn classify(arch: u32, nr: i32) -> Option<GuardedCall> {
    let nr = nr as u32 & !X32_SYSCALL_BIT;
    let a = ARCHES.iter().find(|a| a.arch == arch)?;
    if nr == a.mount {
        Some(GuardedCall::Mount)
    } else if nr == a.umount2 {
        Some(GuardedCall::Umount2)
    } else if Some(nr) == a.old_umount {
        Some(GuardedCall::OldUmount)
    } else {
        None
    }
}

/// A classic-BPF program for `install_seccomp_filter`: the mount calls get `on_mount`, the new
/// mount API ENOSYS.
fn program(on_mount: u32) -> Vec<u8> {
    // (code, jt, jf, k)
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const JGT_K: u16 = 0x25;
    const AND_K: u16 = 0x54;
    const RET_K: u16 = 0x06;
    let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let mut insns: Vec<(u16, u8, u8, u32)> = Vec::new();
    // per architecture: load nr, compare; the blocks end in "allow"
    let mut blocks: Vec<Vec<(u16, u8, u8, u32)>> = Vec::new();
    for a in &ARCHES {
        let mut b: Vec<(u16, u8, u8, u32)> =
            vec![(LD_W_ABS, 0, 0, 0), (AND_K, 0, 0, !X32_SYSCALL_BIT)];
        let mut notify = vec![a.mount, a.umount2];
        notify.extend(a.old_umount);
        // each test jumps to the matching return below; returns are laid out as:
        // [allow, on_mount, enosys] after the tests
        let tests = notify.len() + 3;
        for (i, nr) in notify.iter().enumerate() {
            // distance to "on_mount" return: remaining tests after this one + 1 (allow)
            let to_mount = (tests - i - 1) + 1;
            b.push((JEQ_K, to_mount as u8, 0, *nr));
        }
        // new mount API range: JGE lo -> check hi; else skip
        let i = notify.len();
        let to_enosys = |at: usize| (tests - at - 1) + 2;
        b.push((JGE_K, 0, 1, *NEW_MOUNT_API.start()));
        // if nr > hi: not in range, go on to the mount_setattr test; else enosys
        b.push((JGT_K, 0, to_enosys(i + 1) as u8, *NEW_MOUNT_API.end()));
        b.push((JEQ_K, to_enosys(i + 2) as u8, 0, MOUNT_SETATTR));
        b.push((RET_K, 0, 0, SECCOMP_RET_ALLOW));
        b.push((RET_K, 0, 0, on_mount));
        b.push((RET_K, 0, 0, enosys));
        blocks.push(b);
    }
    // arch dispatch: load arch; for each arch jeq -> its block; an unknown arch is killed
    insns.push((LD_W_ABS, 0, 0, 4));
    let mut offset_to_block = ARCHES.len() + 1; // after the dispatch tests and the final allow
    for (i, a) in ARCHES.iter().enumerate() {
        let remaining_tests = ARCHES.len() - i - 1;
        let jt = remaining_tests + 1 + (offset_to_block - ARCHES.len() - 1);
        insns.push((JEQ_K, jt as u8, 0, a.arch));
        offset_to_block += blocks[i].len();
    }
    insns.push((RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS));
    for b in blocks {
        insns.extend(b);
    }
    let mut out = Vec::with_capacity(insns.len() * 8);
    for (code, jt, jf, k) in insns {
        out.extend_from_slice(&code.to_ne_bytes());
        out.push(jt);
        out.push(jf);
        out.extend_from_slice(&k.to_ne_bytes());
    }
    out
}

/// Init's filter: mount calls go to the monitor.
pub fn supervised_program() -> Vec<u8> {
    program(SECCOMP_RET_USER_NOTIF)
}

const CAP_SYS_ADMIN: u32 = 21;
/// statfs f_type of proc and sysfs.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const SYSFS_MAGIC: i64 = 0x6265_6572;

/// Filesystems a privileged container may mount fresh: its own pseudo filesystems, cgroups (its
/// cgroup namespace roots them at its own cgroup), and real filesystems on devices its device
/// policy lets it open (the helper runs in the container's cgroup for those).
const FRESH_ALLOWED: &[&str] = &[
    "tmpfs", "ramfs", "devpts", "mqueue", "cgroup", "cgroup2", "overlay", "fuse", "fuseblk",
    "squashfs", "erofs", "ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "msdos", "exfat",
    "iso9660", "udf", "nfs", "nfs4", "cifs", "smb3", "9p", "autofs",
];

/// Filesystems whose source is a path (a block device) to resolve in the container.
const BLOCK_BACKED: &[&str] = &[
    "squashfs", "erofs", "ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "msdos", "exfat",
    "iso9660", "udf", "fuseblk",
];

/// A mount(2) call's arguments, copied out of the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountArgs {
    pub source: Option<String>,
    pub target: String,
    pub fstype: Option<String>,
    pub flags: u64,
    pub data: Option<String>,
}

/// The decision on a fresh mount by its filesystem type (and options, for proc).
pub fn fresh_mount_allowed(fstype: &str, data: Option<&str>) -> bool {
    if fstype == "proc" {
        // a pid-only proc shows neither /proc/sys nor sysrq-trigger, kcore and the rest
        return data.is_some_and(|d| d.split(',').any(|o| o == "subset=pid"));
    }
    let base = fstype.split('.').next().unwrap_or(fstype);
    FRESH_ALLOWED.contains(&fstype) || (base == "fuse" && fstype.starts_with("fuse."))
}

/// The monitor's side: the listener and what it needs to judge and carry out calls.
pub struct Guard {
    listener: OwnedFd,
    /// The container's cgroup directories (the helper joins them before opening devices).
    cgroup_dirs: Vec<PathBuf>,
    /// The user namespace the container's root lives in (the host's, for a privileged one).
    userns: Option<(u64, u64)>,
}

impl Guard {
    pub fn new(listener: OwnedFd, cgroup_dirs: Vec<PathBuf>) -> Guard {
        let userns = std::fs::metadata("/proc/self/ns/user").ok().map(|m| {
            (
                std::os::unix::fs::MetadataExt::dev(&m),
                std::os::unix::fs::MetadataExt::ino(&m),
            )
        });
        Guard {
            listener,
            cgroup_dirs,
            userns,
        }
    }

    /// Takes over the listener descriptor `fd` of process `pid` (an attached process that
    /// installed the supervised filter and waits for this), after checking that the process is
    /// in the container (`init_pid`'s pid namespace) and the descriptor is a seccomp listener.
    pub fn adopt(
        pid: i32,
        fd: i32,
        init_pid: i32,
        cgroup_dirs: Vec<PathBuf>,
    ) -> Result<Guard, String> {
        let ns = |p: i32| {
            std::fs::metadata(format!("/proc/{p}/ns/mnt"))
                .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
                .map_err(|e| format!("pid {p}: {e}"))
        };
        // an attaching process that has entered the container's namespaces (it forks into the
        // pid namespace afterwards)
        if ns(pid)? != ns(init_pid)? {
            return Err(format!("pid {pid} is not in the container"));
        }
        let pidfd = warren_sys::pidfd_open(pid).map_err(|e| format!("pidfd of {pid}: {e}"))?;
        let listener = warren_sys::pidfd_getfd(pidfd.as_fd(), fd)
            .map_err(|e| format!("descriptor {fd} of {pid}: {e}"))?;
        let what = std::fs::read_link(format!("/proc/self/fd/{}", listener.as_raw_fd()))
            .map_err(|e| e.to_string())?;
        if what.to_string_lossy() != "anon_inode:seccomp notify" {
            return Err(format!(
                "descriptor {fd} of {pid} is not a seccomp listener"
            ));
        }
        Ok(Guard::new(listener, cgroup_dirs))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Answer one pending call. Errors only mean this one call could not be answered (its
    /// caller died, say); the guard goes on.
    pub fn handle_one(&self) {
        let Ok(req) = warren_sys::seccomp_notif_recv(self.listener.as_fd()) else {
            return;
        };
        let (val, error, flags) = match self.judge(&req) {
            Verdict::Continue => (0, 0, warren_sys::SECCOMP_USER_NOTIF_FLAG_CONTINUE),
            Verdict::Done(Ok(v)) => (v, 0, 0),
            Verdict::Done(Err(errno)) => (0, errno, 0),
        };
        let _ = warren_sys::seccomp_notif_send(self.listener.as_fd(), req.id, val, error, flags);
    }

    fn judge(&self, req: &warren_sys::SeccompNotif) -> Verdict {
        let Some(call) = classify(req.arch, req.nr) else {
            return Verdict::Done(Err(libc::ENOSYS));
        };
        let pid = req.pid;
        // only the container's root is judged here; anyone else gets the kernel's own checks,
        // and a caller we can't tell about is refused
        match self.caller_kind(pid) {
            Some(true) => {}
            Some(false) => return Verdict::Continue,
            None => return Verdict::Done(Err(libc::EPERM)),
        }
        // everything about the caller is taken hold of first, and checked to still be the
        // caller (ID_VALID) only afterwards: a pid reused meanwhile can't lend its namespaces
        let Ok(pidfd) = warren_sys::pidfd_open(pid as i32) else {
            return Verdict::Done(Err(libc::ESRCH));
        };
        let open = |what: &str| {
            std::fs::File::open(format!("/proc/{pid}/{what}")).map_err(|_| libc::ESRCH)
        };
        let (mem, root, cwd) = match (open("mem"), open("root"), open("cwd")) {
            (Ok(m), Ok(r), Ok(c)) => (m, r, c),
            _ => return Verdict::Done(Err(libc::ESRCH)),
        };
        let read = |addr: u64| -> Result<Option<String>, i32> {
            if addr == 0 {
                return Ok(None);
            }
            read_c_string(&mem, addr).map(Some)
        };
        let op = match call {
            GuardedCall::Mount => {
                let args = (|| -> Result<MountArgs, i32> {
                    Ok(MountArgs {
                        source: read(req.args[0])?,
                        target: read(req.args[1])?.ok_or(libc::EFAULT)?,
                        fstype: read(req.args[2])?,
                        flags: strip_magic(req.args[3]),
                        // options must be text: binary mount data (legacy nfs) is refused
                        data: read(req.args[4])?,
                    })
                })();
                match args {
                    Ok(a) => Op::Mount(a),
                    Err(e) => return Verdict::Done(Err(e)),
                }
            }
            GuardedCall::Umount2 | GuardedCall::OldUmount => {
                let target = match read(req.args[0]) {
                    Ok(Some(t)) => t,
                    Ok(None) => return Verdict::Done(Err(libc::EFAULT)),
                    Err(e) => return Verdict::Done(Err(e)),
                };
                let flags = if call == GuardedCall::Umount2 {
                    req.args[1] as i32
                } else {
                    0
                };
                Op::Umount { target, flags }
            }
        };
        // what we read and opened belongs to this call only if the caller is still waiting in it
        if !warren_sys::seccomp_notif_id_valid(self.listener.as_fd(), req.id) {
            return Verdict::Done(Err(libc::ESRCH));
        }
        Verdict::Done(self.carry_out(pid, &pidfd, &root, &cwd, &op))
    }

    /// Whether `pid` is the container's root (CAP_SYS_ADMIN in the container's own user
    /// namespace): `Some(false)` when it positively is not, `None` when it can't be told.
    fn caller_kind(&self, pid: u32) -> Option<bool> {
        let m = std::fs::metadata(format!("/proc/{pid}/ns/user")).ok()?;
        let ns = (
            std::os::unix::fs::MetadataExt::dev(&m),
            std::os::unix::fs::MetadataExt::ino(&m),
        );
        if Some(ns) != self.userns {
            return Some(false);
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let caps = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())?;
        Some(caps & (1 << CAP_SYS_ADMIN) != 0)
    }

    /// Check and perform `op` from a helper in all the caller's namespaces (mount, pid, cgroup,
    /// ipc, net, uts: what a mount is tied to), root and working directory. Returns the call's
    /// result or a positive errno. A helper stuck (a path through a FUSE filesystem of the
    /// container's that never answers) is killed after a few seconds.
    fn carry_out(
        &self,
        pid: u32,
        pidfd: &OwnedFd,
        root: &std::fs::File,
        cwd: &std::fs::File,
        op: &Op,
    ) -> Result<i64, i32> {
        let host_proc = std::fs::File::open("/proc").map_err(|_| libc::EIO)?;
        let (mut rx, tx) = std::os::unix::net::UnixStream::pair().map_err(|_| libc::EIO)?;
        let needs_device = matches!(op, Op::Mount(a) if a.fstype.as_deref().is_some_and(|t| BLOCK_BACKED.contains(&t)));
        match warren_sys::fork_process() {
            Ok(warren_sys::Forked::Child) => {
                drop(rx);
                let code = match helper(
                    pid,
                    op,
                    pidfd,
                    root,
                    cwd,
                    &host_proc,
                    needs_device.then_some(&self.cgroup_dirs[..]),
                ) {
                    Ok(()) => 0,
                    Err(e) => {
                        crate::debug!("mount guard: {op:?} failed: {}", warren_sys::errno_text(e));
                        e
                    }
                };
                let mut tx = tx;
                let _ = std::io::Write::write_all(&mut tx, &code.to_ne_bytes());
                warren_sys::exit_now(0)
            }
            Ok(warren_sys::Forked::Parent(child)) => {
                drop(tx);
                let _ = rx.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut buf = [0u8; 4];
                let got = rx.read_exact(&mut buf);
                if got.is_err() {
                    // stuck or dead: it goes, with whatever it started
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(child),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
                match got {
                    Ok(()) => match i32::from_ne_bytes(buf) {
                        0 => Ok(0),
                        e => Err(e),
                    },
                    Err(_) => Err(libc::EINTR),
                }
            }
            Err(_) => Err(libc::EAGAIN),
        }
    }
}

/// The kernel drops the legacy magic `0xC0ED` in the high 16 bits of mount flags; so do we,
/// so that its bits are not taken for propagation flags.
fn strip_magic(flags: u64) -> u64 {
    if flags & 0xffff_0000 == 0xc0ed_0000 {
        flags & 0xffff
    } else {
        flags
    }
}

enum Verdict {
    Continue,
    Done(Result<i64, i32>),
}

/// What the caller asked for.
#[derive(Debug, Clone)]
enum Op {
    Mount(MountArgs),
    Umount { target: String, flags: i32 },
}

/// Reads a NUL-terminated string (at most a page) at `addr` in the caller's memory.
fn read_c_string(mem: &std::fs::File, addr: u64) -> Result<String, i32> {
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    let mut at = addr;
    while out.len() < 4096 {
        let n = match mem.read_at(&mut buf, at) {
            Ok(0) | Err(_) if out.is_empty() && at == addr => return Err(libc::EFAULT),
            Ok(0) | Err(_) => return Err(libc::EFAULT),
            Ok(n) => n,
        };
        if let Some(end) = buf[..n].iter().position(|b| *b == 0) {
            out.extend_from_slice(&buf[..end]);
            return String::from_utf8(out).map_err(|_| libc::EINVAL);
        }
        out.extend_from_slice(&buf[..n]);
        at += n as u64;
    }
    Err(libc::ENAMETOOLONG)
}

/// The filesystem type of the mount with id `mount_id` and of its parent, from the helper's
/// mountinfo (read through the host's /proc: the container's doesn't show our pid).
fn mount_and_parent_types(
    host_proc: &std::fs::File,
    mount_id: u64,
) -> Option<(String, Option<String>)> {
    let fd = nix::fcntl::openat(
        host_proc.as_fd(),
        "self/mountinfo",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let mut text = String::new();
    std::fs::File::from(fd).read_to_string(&mut text).ok()?;
    let mut by_id = std::collections::HashMap::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = pre.split(' ').collect();
        if f.len() < 2 {
            continue;
        }
        let (Ok(id), Ok(parent)) = (f[0].parse::<u64>(), f[1].parse::<u64>()) else {
            continue;
        };
        let fstype = post.split(' ').next().unwrap_or("").to_string();
        by_id.insert(id, (parent, fstype));
    }
    let (parent, fstype) = by_id.get(&mount_id)?.clone();
    let parent_type = by_id.get(&parent).map(|(_, t)| t.clone());
    Some((fstype, parent_type))
}

/// Opens `path` as the caller would see it from the helper's root and working directory: the
/// caller's own `/proc/self/...` and `/proc/thread-self/...` (systemd mounts through
/// `/proc/self/fd/N`) are the caller's entries in the host's /proc, since the helper is not in
/// the container's pid namespace.
fn open_as_caller(
    pid: u32,
    host_proc: &std::fs::File,
    path: &std::path::Path,
    flags: nix::fcntl::OFlag,
) -> nix::Result<OwnedFd> {
    for prefix in ["/proc/self", "/proc/thread-self"] {
        if let Ok(rest) = path.strip_prefix(prefix) {
            // (only downwards: `/proc/self/../1/root` would be the host's)
            if rest
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(nix::errno::Errno::EPERM);
            }
            return nix::fcntl::openat(
                host_proc.as_fd(),
                &std::path::Path::new(&pid.to_string()).join(rest),
                flags,
                nix::sys::stat::Mode::empty(),
            );
        }
    }
    nix::fcntl::open(path, flags, nix::sys::stat::Mode::empty())
}

fn is_proc_or_sys(fstype: &str) -> bool {
    fstype == "proc" || fstype == "sysfs"
}

/// Runs in the forked helper: enter the caller's mount namespace, root and cwd; check; act.
fn helper(
    pid: u32,
    op: &Op,
    pidfd: &OwnedFd,
    root: &std::fs::File,
    cwd: &std::fs::File,
    host_proc: &std::fs::File,
    join_cgroups: Option<&[PathBuf]>,
) -> Result<(), i32> {
    let errno = |e: nix::Error| e as i32;
    if let Some(dirs) = join_cgroups {
        // opening a block device is then judged by the container's device policy
        let me = std::process::id().to_string();
        for d in dirs {
            std::fs::write(d.join("cgroup.procs"), &me).map_err(|_| libc::EPERM)?;
        }
    }
    // every namespace a mount can be tied to: proc to the pid namespace, cgroup to the cgroup
    // namespace, mqueue to ipc, network filesystems to net
    use nix::sched::CloneFlags as F;
    nix::sched::setns(
        pidfd,
        F::CLONE_NEWNS
            | F::CLONE_NEWPID
            | F::CLONE_NEWCGROUP
            | F::CLONE_NEWIPC
            | F::CLONE_NEWNET
            | F::CLONE_NEWUTS,
    )
    .map_err(errno)?;
    // the pid namespace applies to children only: the work is done by one
    let (mut rx, tx) = std::os::unix::net::UnixStream::pair().map_err(|_| libc::EIO)?;
    match warren_sys::fork_process().map_err(|_| libc::EAGAIN)? {
        warren_sys::Forked::Child => {
            drop(rx);
            let code = match act(pid, op, pidfd, root, cwd, host_proc) {
                Ok(()) => 0,
                Err(e) => e,
            };
            let mut tx = tx;
            let _ = std::io::Write::write_all(&mut tx, &code.to_ne_bytes());
            warren_sys::exit_now(0)
        }
        warren_sys::Forked::Parent(child) => {
            drop(tx);
            let mut buf = [0u8; 4];
            let got = rx.read_exact(&mut buf);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
            match got {
                Ok(()) => match i32::from_ne_bytes(buf) {
                    0 => Ok(()),
                    e => Err(e),
                },
                Err(_) => Err(libc::EIO),
            }
        }
    }
}

/// In the caller's namespaces: enter its root and working directory, check, act.
fn act(
    pid: u32,
    op: &Op,
    pidfd: &OwnedFd,
    root: &std::fs::File,
    cwd: &std::fs::File,
    host_proc: &std::fs::File,
) -> Result<(), i32> {
    let errno = |e: nix::Error| e as i32;
    nix::unistd::fchdir(root.as_fd()).map_err(errno)?;
    nix::unistd::chroot(".").map_err(errno)?;
    nix::unistd::fchdir(cwd.as_fd()).map_err(errno)?;
    // the calls name their paths through these descriptors, relative to the host's /proc
    let open_path = |p: &str, follow: bool| -> Result<OwnedFd, i32> {
        let mut fl = nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC;
        if !follow {
            fl |= nix::fcntl::OFlag::O_NOFOLLOW;
        }
        open_as_caller(pid, host_proc, std::path::Path::new(p), fl).map_err(errno)
    };
    let via = |fd: &OwnedFd| format!("self/fd/{}", fd.as_raw_fd());
    let types_of = |fd: &OwnedFd| -> Result<(String, Option<String>), i32> {
        let id = warren_sys::mount_id_of(fd.as_fd()).map_err(|_| libc::EINVAL)?;
        mount_and_parent_types(host_proc, id).ok_or(libc::EINVAL)
    };
    match op {
        Op::Umount { target, flags } => {
            // Unmounted by name in its directory: a descriptor on the mount itself would keep it
            // busy. The directory is held open while we check and act, and the name (which can't
            // be renamed while mounted on) is looked up without following links.
            let follow = flags & libc::UMOUNT_NOFOLLOW == 0;
            let mut path = PathBuf::from(target);
            let mut hops = 0;
            loop {
                let Some(name) = path.file_name().map(|n| n.to_os_string()) else {
                    // "/", "..": nothing a container unmounts this way
                    return Err(if path == std::path::Path::new("/") {
                        libc::EBUSY
                    } else {
                        libc::EINVAL
                    });
                };
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let dirfd = open_as_caller(
                    pid,
                    host_proc,
                    &dir,
                    nix::fcntl::OFlag::O_PATH
                        | nix::fcntl::OFlag::O_DIRECTORY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                )
                .map_err(errno)?;
                let st = nix::sys::stat::fstatat(
                    dirfd.as_fd(),
                    name.as_os_str(),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(errno)?;
                if follow && st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                    hops += 1;
                    if hops > 40 {
                        return Err(libc::ELOOP);
                    }
                    let link =
                        nix::fcntl::readlinkat(dirfd.as_fd(), name.as_os_str()).map_err(errno)?;
                    path = dir.join(link);
                    continue;
                }
                let parent_fs = nix::sys::statfs::fstatfs(dirfd.as_fd())
                    .map_err(errno)?
                    .filesystem_type()
                    .0 as i64;
                if parent_fs == PROC_SUPER_MAGIC || parent_fs == SYSFS_MAGIC {
                    crate::info!(
                        "mount guard: refused to unmount {target} (it masks part of proc or sysfs)"
                    );
                    return Err(libc::EPERM);
                }
                nix::unistd::fchdir(dirfd.as_fd()).map_err(errno)?;
                let flags = MntFlags::from_bits_truncate(*flags | libc::UMOUNT_NOFOLLOW);
                return nix::mount::umount2(name.as_os_str(), flags).map_err(errno);
            }
        }
        Op::Mount(a) => {
            let flags = MsFlags::from_bits_truncate(a.flags & 0xffff_ffff);
            let propagation = MsFlags::MS_SHARED
                | MsFlags::MS_PRIVATE
                | MsFlags::MS_SLAVE
                | MsFlags::MS_UNBINDABLE;
            let t = open_path(&a.target, true)?;
            let mut source = a.source.clone();
            let mut data = a.data.clone();
            let mut flags_out = flags;
            let mut source_fd = None;
            // only a fresh mount names a filesystem type
            let mut fstype_out = None;
            if flags.contains(MsFlags::MS_REMOUNT) {
                let (own, _) = types_of(&t)?;
                // read-only now (the mount, or the whole filesystem) and asked to be writable
                let read_only_now = nix::sys::statvfs::fstatvfs(t.as_fd())
                    .map_err(errno)?
                    .flags()
                    .contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
                if is_proc_or_sys(&own) && read_only_now && !flags.contains(MsFlags::MS_RDONLY) {
                    crate::info!("mount guard: refused to make {} ({own}) writable", a.target);
                    return Err(libc::EPERM);
                }
                if !flags.contains(MsFlags::MS_BIND) {
                    // the filesystem may be the host's (a tmpfs bound in, the rootfs's disk):
                    // change this mount only, never the superblock
                    flags_out = (flags
                        & (MsFlags::MS_RDONLY
                            | MsFlags::MS_NOSUID
                            | MsFlags::MS_NODEV
                            | MsFlags::MS_NOEXEC
                            | MsFlags::MS_NOATIME
                            | MsFlags::MS_NODIRATIME
                            | MsFlags::MS_RELATIME
                            | MsFlags::MS_STRICTATIME))
                        | MsFlags::MS_REMOUNT
                        | MsFlags::MS_BIND;
                    data = None;
                }
                source = None;
            } else if flags.contains(MsFlags::MS_BIND) {
                let s = open_path(a.source.as_deref().ok_or(libc::EINVAL)?, true)?;
                let (own, _) = types_of(&s)?;
                if is_proc_or_sys(&own) && !flags.contains(MsFlags::MS_REC) {
                    crate::info!(
                        "mount guard: refused a non-recursive bind of {:?} ({own})",
                        a.source
                    );
                    return Err(libc::EPERM);
                }
                source_fd = Some(s);
                data = None;
            } else if flags.intersects(propagation) {
                source = None;
            } else if flags.contains(MsFlags::MS_MOVE) {
                let s = open_path(a.source.as_deref().ok_or(libc::EINVAL)?, true)?;
                let (_, parent) = types_of(&s)?;
                if parent.as_deref().is_some_and(is_proc_or_sys) {
                    crate::info!(
                        "mount guard: refused to move {:?} off proc or sysfs",
                        a.source
                    );
                    return Err(libc::EPERM);
                }
                source_fd = Some(s);
            } else {
                let fstype = a.fstype.as_deref().unwrap_or("");
                if !fresh_mount_allowed(fstype, a.data.as_deref()) {
                    crate::info!("mount guard: refused to mount {fstype} on {}", a.target);
                    return Err(libc::EPERM);
                }
                if BLOCK_BACKED.contains(&fstype) {
                    if let Some(src) = &a.source {
                        // Opened for real, from the container's cgroup: its device policy
                        // decides. (The kernel itself does not open a device whose filesystem
                        // is mounted already, the host's root disk for one: only this check
                        // stands between the container and the host's disk.)
                        let mode = if flags.contains(MsFlags::MS_RDONLY) {
                            nix::fcntl::OFlag::O_RDONLY
                        } else {
                            nix::fcntl::OFlag::O_RDWR
                        };
                        let fd = open_as_caller(
                            pid,
                            host_proc,
                            std::path::Path::new(src),
                            mode | nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK,
                        )
                        .map_err(|e| {
                            crate::info!("mount guard: refused to mount {src}: {e}");
                            errno(e)
                        })?;
                        source_fd = Some(fd);
                    }
                }
                fstype_out = Some(fstype.to_string());
            }
            nix::unistd::fchdir(host_proc.as_fd()).map_err(errno)?;
            let source_path = match &source_fd {
                Some(fd) => Some(via(fd)),
                None => source,
            };
            let c = |s: &Option<String>| {
                s.as_deref()
                    .map(|v| CString::new(v).map_err(|_| libc::EINVAL))
                    .transpose()
            };
            // fuse and autofs name a descriptor in their options (`fd=N`): the caller's, which we
            // take over (pidfd_getfd) and name by our own number
            let mut borrowed = Vec::new();
            if let (Some(t), Some(d)) = (&fstype_out, &data) {
                if t.starts_with("fuse") || t == "autofs" {
                    let mut parts = Vec::new();
                    for o in d.split(',') {
                        match o.strip_prefix("fd=").map(str::parse::<i32>) {
                            Some(Ok(n)) => {
                                let fd = warren_sys::pidfd_getfd(pidfd.as_fd(), n)
                                    .map_err(|e| e.raw_os_error().unwrap_or(libc::EBADF))?;
                                parts.push(format!("fd={}", fd.as_raw_fd()));
                                borrowed.push(fd);
                            }
                            Some(Err(_)) => return Err(libc::EINVAL),
                            None => parts.push(o.to_string()),
                        }
                    }
                    data = Some(parts.join(","));
                }
            }
            let (src_c, fs_c, data_c) = (c(&source_path)?, c(&fstype_out)?, c(&data)?);
            nix::mount::mount(
                src_c.as_deref(),
                via(&t).as_str(),
                fs_c.as_deref(),
                flags_out,
                data_c.as_deref(),
            )
            .map_err(errno)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_classified_per_architecture() {
        assert_eq!(classify(AUDIT_ARCH_X86_64, 165), Some(GuardedCall::Mount));
        assert_eq!(classify(AUDIT_ARCH_X86_64, 166), Some(GuardedCall::Umount2));
        assert_eq!(
            classify(AUDIT_ARCH_X86_64, (165 | X32_SYSCALL_BIT) as i32),
            Some(GuardedCall::Mount)
        );
        assert_eq!(classify(AUDIT_ARCH_I386, 21), Some(GuardedCall::Mount));
        assert_eq!(classify(AUDIT_ARCH_I386, 22), Some(GuardedCall::OldUmount));
        assert_eq!(classify(AUDIT_ARCH_I386, 52), Some(GuardedCall::Umount2));
        assert_eq!(classify(AUDIT_ARCH_X86_64, 0), None);
    }

    #[test]
    fn fresh_mounts_that_reach_the_host_are_refused() {
        for t in [
            "sysfs",
            "proc",
            "devtmpfs",
            "debugfs",
            "securityfs",
            "binfmt_misc",
            "bpf",
            "tracefs",
            "configfs",
            "efivarfs",
        ] {
            assert!(!fresh_mount_allowed(t, None), "{t}");
        }
        assert!(fresh_mount_allowed("proc", Some("hidepid=2,subset=pid")));
        assert!(!fresh_mount_allowed("proc", Some("hidepid=2")));
        for t in ["tmpfs", "cgroup2", "ext4", "fuse.sshfs", "mqueue"] {
            assert!(fresh_mount_allowed(t, None), "{t}");
        }
    }

    /// Runs the program over a seccomp_data in a tiny classic-BPF interpreter (the subset used).
    fn run(prog: &[u8], arch: u32, nr: u32) -> u32 {
        let insns: Vec<(u16, u8, u8, u32)> = prog
            .chunks_exact(8)
            .map(|c| {
                (
                    u16::from_ne_bytes([c[0], c[1]]),
                    c[2],
                    c[3],
                    u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect();
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let (code, jt, jf, k) = insns[pc];
            pc += 1;
            match code {
                0x20 => a = if k == 0 { nr } else { arch },
                0x54 => a &= k,
                0x15 => pc += if a == k { jt } else { jf } as usize,
                0x35 => pc += if a >= k { jt } else { jf } as usize,
                0x25 => pc += if a > k { jt } else { jf } as usize,
                0x06 => return k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn the_filter_routes_mount_calls_and_refuses_the_new_api() {
        let p = supervised_program();
        let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        for (arch, nr, want) in [
            (AUDIT_ARCH_X86_64, 165, SECCOMP_RET_USER_NOTIF),
            (AUDIT_ARCH_X86_64, 166, SECCOMP_RET_USER_NOTIF),
            (
                AUDIT_ARCH_X86_64,
                165 | X32_SYSCALL_BIT,
                SECCOMP_RET_USER_NOTIF,
            ),
            (AUDIT_ARCH_X86_64, 0, SECCOMP_RET_ALLOW),
            (AUDIT_ARCH_X86_64, 427, SECCOMP_RET_ALLOW),
            (AUDIT_ARCH_X86_64, 428, enosys),
            (AUDIT_ARCH_X86_64, 433, enosys),
            (AUDIT_ARCH_X86_64, 434, SECCOMP_RET_ALLOW),
            (AUDIT_ARCH_X86_64, 442, enosys),
            (AUDIT_ARCH_I386, 21, SECCOMP_RET_USER_NOTIF),
            (AUDIT_ARCH_I386, 22, SECCOMP_RET_USER_NOTIF),
            (AUDIT_ARCH_I386, 52, SECCOMP_RET_USER_NOTIF),
            (AUDIT_ARCH_I386, 430, enosys),
            (AUDIT_ARCH_I386, 1, SECCOMP_RET_ALLOW),
            (0xdead, 165, SECCOMP_RET_KILL_PROCESS),
            (AUDIT_ARCH_AARCH64, 40, SECCOMP_RET_USER_NOTIF),
            (AUDIT_ARCH_AARCH64, 39, SECCOMP_RET_USER_NOTIF),
            (AUDIT_ARCH_AARCH64, 442, enosys),
            (AUDIT_ARCH_AARCH64, 63, SECCOMP_RET_ALLOW),
            (AUDIT_ARCH_ARM, 21, SECCOMP_RET_USER_NOTIF),
        ] {
            assert_eq!(run(&p, arch, nr), want, "arch {arch:#x} nr {nr}");
        }
    }
}
