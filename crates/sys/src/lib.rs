//! Every unsafe syscall warren makes, each behind a safe function whose contract makes it sound.
//!
//! Everything else in the workspace is `#![forbid(unsafe_code)]` and reaches the kernel through nix,
//! rustix-free std, or this crate.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

pub use nix;

/// Result of [`fork_process`] or [`clone_namespaces`]: which side of the fork we are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// In the parent; the child's pid (in the parent's pid namespace).
    Parent(i32),
    /// In the new child process.
    Child,
}

/// Number of threads of the calling process, from /proc/self/status.
pub fn thread_count() -> io::Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no Threads: line in /proc/self/status"))
}

/// Set in the child of [`fork_process`] / [`clone_namespaces`]: a fork child has exactly one thread
/// until it starts one, and warren never starts threads there. Checked first because after a setns
/// into another mount namespace /proc/self may not resolve.
static IN_FORK_CHILD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn require_single_threaded(what: &str) -> io::Result<()> {
    if IN_FORK_CHILD.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(());
    }
    match thread_count()? {
        1 => Ok(()),
        n => Err(io::Error::other(format!(
            "{what} needs a single-threaded process, this one has {n} threads"
        ))),
    }
}

/// fork(2). Refuses in a multi-threaded process, where the child could inherit a lock held by another
/// thread (malloc's, for instance) and deadlock.
pub fn fork_process() -> io::Result<Forked> {
    require_single_threaded("fork")?;
    // SAFETY: the process is single-threaded (checked above), so the child gets a consistent copy of
    // all memory and locks; fork itself has no memory-safety preconditions beyond that.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child.as_raw())),
        nix::unistd::ForkResult::Child => {
            IN_FORK_CHILD.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(Forked::Child)
        }
    }
}

/// Raw clone(2) with `flags` (CLONE_NEW* bits) and SIGCHLD, fork-style: 0 in the child, its pid
/// in the parent, -1 on failure.
///
/// # Safety
/// In a multi-threaded caller the child may only make async-signal-safe calls before exiting
/// (another thread may have held a lock at the time of the clone).
unsafe fn fork_clone(flags: libc::c_int) -> libc::c_long {
    let flags = flags as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: raw clone with a NULL stack behaves like fork (the child runs on a copy-on-write copy
    // of the parent's stack); no CLONE_VM/CLONE_THREAD, so no memory is shared. The remaining
    // arguments (ptid, ctid, tls) are unused without the matching flags.
    unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    }
}

/// clone(2) with namespace flags, fork-style (no new stack: the child continues on a copy of the
/// caller's). `flags` are CLONE_NEW* bits; SIGCHLD is added so the parent can wait for the child.
pub fn clone_namespaces(flags: libc::c_int) -> io::Result<Forked> {
    require_single_threaded("clone")?;
    // SAFETY: the process is single-threaded (checked above), so no lock can be held by a thread
    // that doesn't exist in the child, and the child may go on running any code.
    let ret = unsafe { fork_clone(flags) };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            IN_FORK_CHILD.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(Forked::Child)
        }
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// `struct clone_args` of clone3(2), version 2 (with `cgroup`).
#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3(2) with namespace flags and CLONE_INTO_CGROUP: the child starts in the cgroup2
/// directory `cgroup` (no migration afterwards). Fork-style, like [`clone_namespaces`].
pub fn clone_into_cgroup(flags: libc::c_int, cgroup: BorrowedFd<'_>) -> io::Result<Forked> {
    require_single_threaded("clone")?;
    let args = CloneArgs {
        flags: (flags as u32 as u64) | CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup.as_raw_fd() as u64,
    };
    // SAFETY: as for clone_namespaces: no CLONE_VM, a NULL stack (the child continues on a
    // copy-on-write copy of ours), a single-threaded process (checked). `args` is a live struct
    // of the size we pass; the kernel only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            IN_FORK_CHILD.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(Forked::Child)
        }
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// pidfd_open(2): a file descriptor that refers to process `pid` and becomes readable when it exits.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no pointers involved.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// pidfd_send_signal(2).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: a valid borrowed fd, a signal number, a NULL siginfo (allowed: the kernel fills in
    // SI_USER) and zero flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null_mut::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// TIOCSCTTY: make the terminal `fd` the controlling terminal of the calling session leader.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument (0: don't steal); fd is a valid borrowed descriptor.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0 as libc::c_int) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// TIOCGPTPEER: open the slave of pty master `master` without resolving a path (safe against a
/// container that replaced its /dev/pts).
pub fn open_pty_peer(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags as an int and returns a new fd or -1.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

/// A terminal's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowSize {
    pub rows: u16,
    pub cols: u16,
}

/// TIOCGWINSZ.
pub fn get_window_size(fd: BorrowedFd<'_>) -> io::Result<WindowSize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize through the pointer, which points to a live,
    // properly aligned local.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGWINSZ,
            &mut ws as *mut libc::winsize,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(WindowSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// TIOCSWINSZ.
pub fn set_window_size(fd: BorrowedFd<'_>, size: WindowSize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one struct winsize through the pointer, which points to a live local.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCSWINSZ,
            &ws as *const libc::winsize,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Close every descriptor >= `from`, except those in `keep`, so a container's init inherits none of
/// the monitor's. Only for a process about to exec or exit: Rust objects that own the closed
/// descriptors must not be used afterwards.
pub fn close_fds_from(from: RawFd, keep: &[RawFd]) -> io::Result<()> {
    let mut start = from as libc::c_uint;
    let mut keep: Vec<libc::c_uint> = keep
        .iter()
        .filter(|&&fd| fd >= from)
        .map(|&fd| fd as libc::c_uint)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    for k in keep.into_iter().chain(std::iter::once(libc::c_uint::MAX)) {
        if k > start {
            let last = k - 1;
            // SAFETY: close_range has no pointer arguments and touches no memory. It may close
            // descriptors that Rust objects of the caller still own (a log file, a listener): the
            // contract of this function is that it runs just before exec or _exit, after which
            // those objects are never used again (at worst a write before that fails with EBADF),
            // and descriptor numbers are not reused meanwhile because nothing else opens files.
            let ret =
                unsafe { libc::syscall(libc::SYS_close_range, start, last, 0 as libc::c_uint) };
            if ret < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if k == libc::c_uint::MAX {
            break;
        }
        start = k + 1;
    }
    Ok(())
}

/// Clear FD_CLOEXEC on `fd`, so it survives an exec.
pub fn clear_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let flags = fcntl(fd, FcntlArg::F_GETFD).map_err(io::Error::from)?;
    let mut flags = FdFlag::from_bits_truncate(flags);
    flags.remove(FdFlag::FD_CLOEXEC);
    fcntl(fd, FcntlArg::F_SETFD(flags)).map_err(io::Error::from)?;
    Ok(())
}

/// Duplicate `fd` onto descriptor number `target` (dup2), for stdin/stdout/stderr set-up before exec.
pub fn dup_onto(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    if fd.as_raw_fd() == target {
        return clear_cloexec(fd);
    }
    // SAFETY: dup2 has no pointer arguments; replacing `target` is the intent (the caller is about to
    // exec and owns no Rust object for the descriptor being replaced).
    let ret = unsafe { libc::dup2(fd.as_raw_fd(), target) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Borrow a descriptor number the process has open for its whole life (0, 1, 2).
pub fn std_fd(fd: RawFd) -> BorrowedFd<'static> {
    assert!(
        (0..=2).contains(&fd),
        "std_fd is only for stdin, stdout and stderr"
    );
    // SAFETY: descriptors 0-2 stay open for the process's life in warren's binaries (they are never
    // closed, only replaced with dup2, which keeps the number valid).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Exit the process at once, without running atexit handlers or flushing stdio buffers (for forked
/// children that must not run the parent's clean-up twice).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// The current process's `errno`-style error description for a raw errno value.
pub fn errno_text(errno: i32) -> String {
    io::Error::from_raw_os_error(errno).to_string()
}

/// recvmsg(2) into `buf`, taking ownership of any descriptors that arrive as SCM_RIGHTS (they are
/// created close-on-exec). Returns the number of bytes read (0 at end of stream).
pub fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    // room for a container's console and ttys in one message (lxc.tty.max is rarely above 12)
    let mut cmsg = nix::cmsg_space!([RawFd; 64]);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other.map_err(io::Error::from)?,
        }
    };
    let bytes = msg.bytes;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(received) = c {
            for fd in received {
                // SAFETY: the kernel installed these descriptors in our table for this message; no
                // other object refers to them, so we are their only owner.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Ok(bytes)
}

/// sigaction(2). The handler in `act`, if any, must only do async-signal-safe work (store to an
/// atomic, write to a pipe): every caller in warren does exactly that.
pub fn set_signal_action(
    sig: nix::sys::signal::Signal,
    act: &nix::sys::signal::SigAction,
) -> nix::Result<()> {
    // SAFETY: installing a handler is unsafe only because the handler could do non-async-signal-safe
    // work; warren's handlers store to atomics or write to a pipe (see the callers), or are
    // SIG_IGN / SIG_DFL.
    unsafe { nix::sys::signal::sigaction(sig, act) }.map(drop)
}

/// Set `sig` to be ignored (SIG_IGN) or back to its default (SIG_DFL).
pub fn set_signal_ignored(sig: nix::sys::signal::Signal, ignored: bool) -> nix::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet};
    let handler = if ignored {
        SigHandler::SigIgn
    } else {
        SigHandler::SigDfl
    };
    set_signal_action(
        sig,
        &SigAction::new(handler, SaFlags::empty(), SigSet::empty()),
    )
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` of mount_setattr(2) (version 0, 32 bytes).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at `path` (not recursive),
/// close-on-exec, to be changed with [`idmap_mount`] and attached with [`move_mount_to`].
pub fn open_tree_clone(path: &std::path::Path) -> io::Result<OwnedFd> {
    open_tree_clone_with(path, false)
}

/// [`open_tree_clone`], with the mounts below `path` too when `recursive` (AT_RECURSIVE: what
/// an `rbind` takes).
pub fn open_tree_clone_with(path: &std::path::Path, recursive: bool) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("path contains a NUL byte"))?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; open_tree returns a
    // new descriptor or -1 and touches no other memory of ours.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// mount_setattr(2) with MOUNT_ATTR_IDMAP: make the detached mount `mount_fd` show its files
/// through the id mapping of the user namespace `userns` (and make it private).
pub fn idmap_mount(mount_fd: BorrowedFd<'_>, userns: BorrowedFd<'_>) -> io::Result<()> {
    set_mount_attr(mount_fd, Some(userns), false)
}

/// mount_setattr(2) making the detached mount `mount_fd` private (no id mapping).
pub fn make_mount_private(mount_fd: BorrowedFd<'_>) -> io::Result<()> {
    set_mount_attr(mount_fd, None, false)
}

/// [`idmap_mount`] or [`make_mount_private`] (`userns` None) of a whole detached tree (from
/// [`open_tree_clone_with`] recursive): every mount in it.
pub fn set_tree_attr(
    mount_fd: BorrowedFd<'_>,
    userns: Option<BorrowedFd<'_>>,
    recursive: bool,
) -> io::Result<()> {
    set_mount_attr(mount_fd, userns, recursive)
}

fn set_mount_attr(
    mount_fd: BorrowedFd<'_>,
    userns: Option<BorrowedFd<'_>>,
    recursive: bool,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: if userns.is_some() {
            MOUNT_ATTR_IDMAP
        } else {
            0
        },
        attr_clr: 0,
        // a copy of a shared mount would stay in its peer group; pivot_root refuses a shared root
        propagation: libc::MS_PRIVATE,
        userns_fd: userns.map(|u| u.as_raw_fd() as u64).unwrap_or(0),
    };
    let empty = c"";
    // SAFETY: `attr` is a live, properly laid out struct mount_attr whose size we pass; `empty`
    // is a static NUL-terminated string; both descriptors are valid borrowed fds.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount_fd.as_raw_fd(),
            empty.as_ptr(),
            (libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 }) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// move_mount(2): attach the detached mount `mount_fd` on the file or directory `target_fd` refers
/// to (an O_PATH descriptor, resolved safely by the caller; move_mount follows no magic link).
pub fn move_mount_onto(mount_fd: BorrowedFd<'_>, target_fd: BorrowedFd<'_>) -> io::Result<()> {
    let empty = c"";
    // SAFETY: the empty string is NUL-terminated and static; both descriptors are valid borrowed
    // descriptors for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount_fd.as_raw_fd(),
            empty.as_ptr(),
            target_fd.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// move_mount(2): attach the detached mount `mount_fd` on `target` (in the caller's mount
/// namespace).
pub fn move_mount_to(mount_fd: BorrowedFd<'_>, target: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(target.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("path contains a NUL byte"))?;
    let empty = c"";
    // SAFETY: both strings are valid NUL-terminated and outlive the call; mount_fd is a valid
    // borrowed descriptor.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount_fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// TIOCSPTLCK(0) on a freshly opened pty master: unlock its slave.
pub fn unlock_pty(master: BorrowedFd<'_>) -> io::Result<()> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which points to a live local.
    let ret = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCSPTLCK,
            &unlock as *const libc::c_int,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// seccomp(SECCOMP_SET_MODE_FILTER): install a classic-BPF filter program (an array of
/// `struct sock_filter`, 8 bytes each) on the calling thread. The caller must hold
/// CAP_SYS_ADMIN in its user namespace or have set no_new_privs.
pub fn install_seccomp_filter(program: &[u8]) -> io::Result<()> {
    load_seccomp(program, 0).map(|_| ())
}

/// Like [`install_seccomp_filter`], with a user-notification listener: system calls the filter
/// answers with SECCOMP_RET_USER_NOTIF wait until a supervisor reading the returned descriptor
/// answers them ([`seccomp_notif_recv`], [`seccomp_notif_send`]).
pub fn install_seccomp_listener(program: &[u8]) -> io::Result<OwnedFd> {
    let fd = load_seccomp(program, SECCOMP_FILTER_FLAG_NEW_LISTENER)?;
    // SAFETY: with NEW_LISTENER a successful seccomp(2) returns a new descriptor that nobody
    // else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_uint = 1 << 3;

fn load_seccomp(program: &[u8], flags: libc::c_uint) -> io::Result<libc::c_long> {
    if program.is_empty()
        || !program.len().is_multiple_of(8)
        || program.len() / 8 > u16::MAX as usize
    {
        return Err(io::Error::other("malformed seccomp program"));
    }
    let filters: Vec<libc::sock_filter> = program
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let prog = libc::sock_fprog {
        len: filters.len() as u16,
        filter: filters.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points to `filters`, a live array of `len` sock_filter structs, for the
    // duration of the call; the kernel copies the program and keeps no pointer to our memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}

/// One intercepted system call (`struct seccomp_notif`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SeccompNotif {
    pub id: u64,
    /// The caller, in the supervisor's pid namespace.
    pub pid: u32,
    pub flags: u32,
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

#[repr(C)]
#[derive(Default)]
struct RawSeccompNotif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

#[repr(C)]
struct RawSeccompNotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const SECCOMP_IOCTL_NOTIF_RECV: libc::Ioctl = 0xc050_2100_u32 as libc::Ioctl;
const SECCOMP_IOCTL_NOTIF_SEND: libc::Ioctl = 0xc018_2101_u32 as libc::Ioctl;
const SECCOMP_IOCTL_NOTIF_ID_VALID: libc::Ioctl = 0x4008_2102_u32 as libc::Ioctl;
/// Let the intercepted call proceed in the kernel as if not intercepted.
pub const SECCOMP_USER_NOTIF_FLAG_CONTINUE: u32 = 1;

/// Receive the next intercepted call from a listener (blocks unless one is pending).
pub fn seccomp_notif_recv(listener: BorrowedFd<'_>) -> io::Result<SeccompNotif> {
    let mut raw = RawSeccompNotif::default();
    // SAFETY: `raw` is a zeroed struct seccomp_notif (the kernel requires zeroes) that lives
    // across the call; the ioctl writes at most its size.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            SECCOMP_IOCTL_NOTIF_RECV,
            &mut raw as *mut RawSeccompNotif,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(SeccompNotif {
        id: raw.id,
        pid: raw.pid,
        flags: raw.flags,
        nr: raw.nr,
        arch: raw.arch,
        instruction_pointer: raw.instruction_pointer,
        args: raw.args,
    })
}

/// Answer intercepted call `id`: return `val`, or fail with `error` (a positive errno), or with
/// `flags` = [`SECCOMP_USER_NOTIF_FLAG_CONTINUE`] let the kernel run it.
pub fn seccomp_notif_send(
    listener: BorrowedFd<'_>,
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
) -> io::Result<()> {
    let resp = RawSeccompNotifResp {
        id,
        val,
        // the kernel takes a negative errno
        error: -error,
        flags,
    };
    // SAFETY: `resp` is a live struct seccomp_notif_resp the kernel only reads.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            SECCOMP_IOCTL_NOTIF_SEND,
            &resp as *const RawSeccompNotifResp,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether intercepted call `id` is still waiting (its caller alive): checked after reading the
/// caller's memory, so what was read belongs to that caller and not to a reused pid.
pub fn seccomp_notif_id_valid(listener: BorrowedFd<'_>, id: u64) -> bool {
    // SAFETY: the ioctl reads one u64 from the pointer, which points to a live local.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            SECCOMP_IOCTL_NOTIF_ID_VALID,
            &id as *const u64,
        )
    };
    ret == 0
}

/// The uid that owns the user namespace a namespace `ns` belongs to (ioctl NS_GET_USERNS, then
/// NS_GET_OWNER_UID): who may act on a network namespace, say.
pub fn namespace_owner_uid(ns: BorrowedFd<'_>) -> io::Result<u32> {
    const NS_GET_USERNS: libc::Ioctl = 0xb701;
    const NS_GET_OWNER_UID: libc::Ioctl = 0xb704;
    // SAFETY: NS_GET_USERNS takes no argument and returns a new descriptor or -1.
    let userns = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_USERNS) };
    if userns < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    let userns = unsafe { OwnedFd::from_raw_fd(userns) };
    let mut uid: libc::uid_t = 0;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t through the pointer, which points to a live local.
    let ret = unsafe {
        libc::ioctl(
            userns.as_raw_fd(),
            NS_GET_OWNER_UID,
            &mut uid as *mut libc::uid_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(uid)
}

/// pidfd_getfd(2): a duplicate of descriptor `target_fd` of the process behind `pidfd` (the
/// caller needs ptrace rights over it), close-on-exec.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, target_fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: plain integer arguments; the kernel returns a new descriptor or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target_fd, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// The id of the mount `fd` lies on (statx STATX_MNT_ID), as /proc/PID/mountinfo numbers them.
pub fn mount_id_of(fd: BorrowedFd<'_>) -> io::Result<u64> {
    const STATX_MNT_ID: libc::c_uint = 0x1000;
    // SAFETY: statx is plain old data; zeroed is a valid value.
    let mut buf: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: the empty path is a static NUL-terminated string, `buf` is a live statx the kernel
    // fills, and `fd` is a valid descriptor (AT_EMPTY_PATH makes the call about it).
    let ret = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            STATX_MNT_ID,
            &mut buf,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if buf.stx_mask & STATX_MNT_ID == 0 {
        return Err(io::Error::other("this kernel reports no mount ids"));
    }
    Ok(buf.stx_mnt_id)
}

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const BPF_F_REPLACE: u32 = 4;

/// Load `insns` as a BPF_PROG_TYPE_CGROUP_DEVICE program and attach it (BPF_F_ALLOW_MULTI) to the
/// cgroup2 directory `cgroup`, in place of program `replace` when given (one atomic swap: no
/// moment without a policy). Returns the program's descriptor, what a later replace names; the
/// attachment alone keeps the program alive. On failure the verifier's log, if any, is part of
/// the error.
pub fn attach_cgroup_device_program(
    insns: &[BpfInsn],
    cgroup: BorrowedFd<'_>,
    replace: Option<BorrowedFd<'_>>,
) -> io::Result<OwnedFd> {
    let raw: Vec<u64> = insns
        .iter()
        .map(|i| {
            (i.code as u64)
                | ((i.regs as u64) << 8)
                | (((i.off as u16) as u64) << 16)
                | (((i.imm as u32) as u64) << 32)
        })
        .collect();
    let license = c"GPL";
    let mut log = vec![0u8; 16 * 1024];
    // union bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, log_level,
    // log_size, log_buf (the rest zero)
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&BPF_PROG_TYPE_CGROUP_DEVICE.to_ne_bytes());
    attr[4..8].copy_from_slice(&(raw.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(raw.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[24..28].copy_from_slice(&1u32.to_ne_bytes());
    attr[28..32].copy_from_slice(&(log.len() as u32).to_ne_bytes());
    attr[32..40].copy_from_slice(&(log.as_mut_ptr() as u64).to_ne_bytes());
    // SAFETY: `attr` is a zeroed bpf_attr of the size we pass, whose pointers (instructions,
    // license, log buffer) point to live buffers of the stated lengths for the whole call; the
    // kernel writes only into `log`, within log_size bytes.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            attr.as_mut_ptr(),
            attr.len() as u32,
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        let end = log.iter().position(|b| *b == 0).unwrap_or(0);
        let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
        return Err(if text.is_empty() {
            err
        } else {
            io::Error::new(err.kind(), format!("{err}: {text}"))
        });
    }
    // SAFETY: the kernel just returned this fd to us; nobody else owns it.
    let prog = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // union bpf_attr for BPF_PROG_ATTACH: target_fd, attach_bpf_fd, attach_type, attach_flags
    let mut attach = [0u8; 128];
    attach[0..4].copy_from_slice(&(cgroup.as_raw_fd() as u32).to_ne_bytes());
    attach[4..8].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
    attach[8..12].copy_from_slice(&BPF_CGROUP_DEVICE.to_ne_bytes());
    // union bpf_attr for BPF_PROG_ATTACH: ..., attach_flags, replace_bpf_fd
    let flags = match replace {
        Some(old) => {
            attach[16..20].copy_from_slice(&(old.as_raw_fd() as u32).to_ne_bytes());
            BPF_F_ALLOW_MULTI | BPF_F_REPLACE
        }
        None => BPF_F_ALLOW_MULTI,
    };
    attach[12..16].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: `attach` is a zeroed bpf_attr of the size we pass, holding valid descriptors.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            attach.as_mut_ptr(),
            attach.len() as u32,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(prog)
}

/// Overwrite the `comm` name (as `ps -o comm` and /proc/PID/comm show it).
pub fn set_comm(name: &CStr) -> io::Result<()> {
    nix::sys::prctl::set_name(name).map_err(io::Error::from)
}

/// Gives SIGPIPE back its default action (end the process), which Rust's runtime replaces by
/// "ignore": a command-line tool whose output goes into `head` then ends quietly, as C tools
/// do, instead of failing on EPIPE.
pub fn default_sigpipe() {
    // SAFETY: installing SIG_DFL for SIGPIPE touches no memory of ours and is async-signal-safe;
    // it is called at the start of main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A user namespace with the given maps (`/proc/PID/uid_map` lines such as "0 100000 65536"),
/// held by the returned descriptor alone: what an idmapped mount names. Usable from a
/// multi-threaded process: the child made for it only waits in pause(2) until it is killed
/// (or its parent dies), and holds nothing anyone waits on.
pub fn userns_with_maps(uid_map: &str, gid_map: &str) -> io::Result<OwnedFd> {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: in the child only async-signal-safe system calls follow (prctl, getppid, pause,
    // _exit), so no lock held by another thread of the parent can be touched.
    let pid = unsafe { fork_clone(libc::CLONE_NEWUSER) };
    if pid == 0 {
        // SAFETY: plain system calls on no memory of ours; the loop only ends by a signal.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(0);
            }
            loop {
                libc::pause();
            }
        }
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    let result = (|| {
        std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)?;
        std::fs::write(format!("/proc/{pid}/gid_map"), gid_map)?;
        std::fs::File::open(format!("/proc/{pid}/ns/user")).map(OwnedFd::from)
    })();
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
    result
}

const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// struct loop_config (linux/loop.h): the backing fd, the block size, a struct loop_info64
/// (232 bytes; lo_flags at offset 52) and reserved space.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: [u8; 232],
    reserved: [u64; 8],
}

/// A free loop device backed by `file`, read-only and detached by the kernel once nothing holds
/// it (autoclear: mount it, then drop the returned descriptor). Returns the device's path and
/// an open descriptor on it.
pub fn loop_device_for(file: BorrowedFd<'_>) -> io::Result<(std::path::PathBuf, OwnedFd)> {
    use std::os::unix::fs::OpenOptionsExt;
    let control = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")?;
    // a free device can be taken by someone else between the two calls: try again
    for _ in 0..16 {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number or -1.
        let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let path = std::path::PathBuf::from(format!("/dev/loop{n}"));
        let dev = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)?;
        let mut config = LoopConfig {
            fd: file.as_raw_fd() as u32,
            block_size: 0,
            info: [0; 232],
            reserved: [0; 8],
        };
        config.info[52..56]
            .copy_from_slice(&(LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR).to_ne_bytes());
        // SAFETY: `config` is a live, properly laid out struct loop_config; the kernel reads it
        // and keeps no pointer to it. `dev` and the backing fd are valid descriptors.
        let ret = unsafe {
            libc::ioctl(
                dev.as_raw_fd(),
                LOOP_CONFIGURE as _,
                &config as *const LoopConfig,
            )
        };
        if ret == 0 {
            return Ok((path, OwnedFd::from(dev)));
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EBUSY) {
            return Err(err);
        }
    }
    Err(io::Error::other(
        "no free loop device (every one taken meanwhile)",
    ))
}

/// Lets go of the resident pages of this process's own executable code (its `r-xp` mappings of
/// /proc/self/exe): what ran once at start-up stops counting in its RSS, and what runs again
/// is faulted back in from the page cache, where the pages stay, shared. Returns the bytes of
/// mappings released. For long-lived, mostly idle processes (a container's monitor).
pub fn release_own_code_pages() -> io::Result<usize> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut released = 0;
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let path = f.nth(3).unwrap_or("");
        if perms != "r-xp" || std::path::Path::new(path) != exe {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        else {
            continue;
        };
        // SAFETY: the range is one of our own executable, private, never-written mappings of
        // the executable file (code is mapped r-x and a running executable can't be written:
        // ETXTBSY). MADV_DONTNEED on such a mapping only drops the page-table entries; any
        // later access faults the same bytes back in from the file. No Rust object lives there.
        let ret =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if ret == 0 {
            released += end - start;
        }
    }
    Ok(released)
}

/// ext4's "top of directory hierarchies" flag (`chattr +T`, FS_TOPDIR_FL).
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Marks `dir` as the top of directory hierarchies (`chattr +T`): ext4's Orlov allocator then
/// spreads its subdirectories over block groups instead of packing them beside it. Each
/// subdirectory of an image store is a hierarchy of its own; packed, a new one lands where the
/// last deleted one was, and on ext4 without a journal every inode it allocates first skips all
/// recently deleted ones there (an unpack several times slower). Filesystems without the flag
/// answer with an error, which callers may ignore.
pub fn set_topdir_flag(dir: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)?;
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int through the pointer, which points to a live local.
    let ret = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::FS_IOC_GETFLAGS as _,
            &mut flags as *mut libc::c_int,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & FS_TOPDIR_FL != 0 {
        return Ok(());
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads one int through the pointer, which points to a live local.
    let ret = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::FS_IOC_SETFLAGS as _,
            &flags as *const libc::c_int,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Debian's libseccomp.a is compiled against glibc with `_FORTIFY_SOURCE`: its text export of a
/// filter (`seccomp_export_pfc`, which warren never calls) prints through glibc's `__fprintf_chk`.
/// musl has no such symbol, so the static musl build of the tools (scripts/build.sh) would not
/// link. This stand-in ignores its arguments and reports failure, as a print error would.
#[cfg(target_env = "musl")]
// SAFETY: no Rust item has this name, and libseccomp's callers pass it a C variadic call,
// whose arguments a callee that reads none of them may ignore (the caller cleans up).
#[no_mangle]
pub extern "C" fn __fprintf_chk() -> libc::c_int {
    -1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_count_reads_status() {
        assert!(thread_count().unwrap() >= 1);
    }

    #[test]
    fn topdir_flag_is_set_where_the_filesystem_has_it() {
        // /var/tmp is on the root filesystem (ext4 here); tmpfs has no such flag
        let dir =
            std::path::Path::new("/var/tmp").join(format!("warren-topdir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let result = set_topdir_flag(&dir);
        let lsattr = std::process::Command::new("lsattr")
            .arg("-d")
            .arg(&dir)
            .output();
        let _ = std::fs::remove_dir(&dir);
        match result {
            Ok(()) => {
                if let Ok(out) = lsattr {
                    let flags = String::from_utf8_lossy(&out.stdout);
                    let flags = flags.split_whitespace().next().unwrap_or_default();
                    assert!(flags.contains('T'), "lsattr shows {flags}");
                }
            }
            Err(e) => assert!(
                matches!(
                    e.raw_os_error(),
                    Some(libc::ENOTTY) | Some(libc::EOPNOTSUPP) | Some(libc::EINVAL)
                ),
                "{e}"
            ),
        }
        assert!(set_topdir_flag(std::path::Path::new("/nonexistent-warren")).is_err());
    }

    #[test]
    fn own_code_pages_can_be_released_and_run_again() {
        let released = release_own_code_pages().expect("release");
        assert!(released > 0, "no r-xp mapping of our own executable found");
        // the code runs on after, faulted back in
        assert!(thread_count().is_ok_and(|n| n >= 1));
    }
}
