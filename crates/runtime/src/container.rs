//! The container's first process, between clone and exec: mounts, hostname, console, environment,
//! then exec of init (or, for `execute`, a minimal init that runs one command and reaps).
//!
//! It runs in the new namespaces as a fork of the monitor and reports failure over the sync socket;
//! success is the socket closing on exec (it is close-on-exec).

use nix::sys::signal::{self, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::hooks;
use crate::mounts;
use crate::spec::{ContainerSpec, HookKind, NsKind};
use crate::{seccomp, security};

/// What the monitor hands to the container process.
pub struct ChildSetup<'a> {
    pub spec: &'a ContainerSpec,
    /// Make /dev/console (a pty of the container's own devpts; its master goes to the monitor).
    pub console: bool,
    /// Make /dev/tty1..N the same way.
    pub ttys: u32,
    /// cgroup hierarchies to mount for `lxc.mount.auto = cgroup:*`: (dir, options, is_cgroup2).
    pub cgroup_layout: Vec<(String, String, bool)>,
    /// `execute`: run init.cmd under a minimal init that reaps and passes the exit status through.
    pub minimal_init: bool,
    /// The network interfaces to configure inside (their host sides are the monitor's).
    pub ifaces: &'a [crate::network::Iface],
}

/// Body of the cloned child. Never returns: it execs or exits.
pub fn run(setup: ChildSetup<'_>, mut sync: UnixStream) -> ! {
    // warren's code runs as the container's PID 1 until exec: non-dumpable, so its /proc/1/exe
    // and memory are out of reach of anything the container starts meanwhile (CVE-2019-5736)
    if nix::sys::prctl::set_dumpable(false).is_err() {
        warren_sys::exit_now(1);
    }
    match setup_and_exec(&setup, &sync) {
        Ok(never) => match never {},
        Err(msg) => {
            crate::error!("container setup failed: {msg}");
            let _ = sync.write_all(format!("{msg}\n").as_bytes());
            warren_sys::exit_now(1);
        }
    }
}

enum Never {}

fn setup_and_exec(setup: &ChildSetup<'_>, sync: &UnixStream) -> Result<Never, String> {
    let spec = setup.spec;
    let has = |k: NsKind| spec.namespaces.new.contains(&k);
    // The monitor moves us into our cgroup meanwhile; we need to be there before the cgroup
    // namespace is made (its root is the cgroup we are in) and before init runs. Until then the
    // mounts that don't depend on it proceed in parallel (migrations between cgroups are slow).
    // With a user namespace, everything waits: nothing works before the id maps are written.
    let mut go_received = false;
    // with a user namespace the monitor sends the idmapped rootfs mount along with "go"
    let mut idmapped_rootfs: Option<std::os::fd::OwnedFd> = None;
    // and after it the idmapped copies of `idmap=container` mount entries' sources, in order
    let mut idmapped_entries: std::collections::VecDeque<std::os::fd::OwnedFd> = Default::default();
    let mut wait_go = |fds_out: &mut Vec<std::os::fd::OwnedFd>| -> Result<(), String> {
        if !go_received {
            let mut go = [0u8; 1];
            let mut fds = Vec::new();
            let n = warren_sys::recv_with_fds(sync.as_fd(), &mut go, &mut fds)
                .map_err(|e| format!("wait for the monitor: {e}"))?;
            if n == 0 {
                return Err("the monitor went away".into());
            }
            *fds_out = fds;
            go_received = true;
        }
        Ok(())
    };
    if has(NsKind::User) {
        let mut fds = Vec::new();
        wait_go(&mut fds)?;
        let mut fds = fds.into_iter();
        idmapped_rootfs = fds.next();
        idmapped_entries.extend(fds);
        // become the namespace's root (the monitor has written the maps)
        nix::unistd::setresgid(0.into(), 0.into(), 0.into())
            .map_err(|e| format!("become root in the user namespace (gid): {e}"))?;
        nix::unistd::setgroups(&[]).map_err(|e| format!("setgroups in the user namespace: {e}"))?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into())
            .map_err(|e| format!("become root in the user namespace (uid): {e}"))?;
        if idmapped_rootfs.is_none() && has(NsKind::Mount) {
            // a regular user's monitor can't make mounts for us: the rootfs (already owned by
            // the mapped ids) is our working directory, and we may clone it in our own mount
            // namespace even where its path is not searchable by the container's root
            let tree = warren_sys::open_tree_clone(Path::new("."))
                .map_err(|e| format!("bind the rootfs {}: {e}", spec.rootfs.path.display()))?;
            // a clone of a shared mount would be the host's peer: what we mount on it must
            // not propagate back
            warren_sys::make_mount_private(std::os::fd::AsFd::as_fd(&tree))
                .map_err(|e| format!("rootfs mount {}: {e}", spec.rootfs.path.display()))?;
            idmapped_rootfs = Some(tree);
        }
    }
    for (kind, target) in &spec.namespaces.share {
        join_shared(spec, *kind, target)?;
    }
    if has(NsKind::Uts) {
        if let Some(h) = &spec.hostname {
            nix::unistd::sethostname(h).map_err(|e| format!("set hostname \"{h}\": {e}"))?;
        }
    }
    // sysctls through the host's /proc/sys: its net, ipc and uts entries show the namespaces of the
    // process that opens them (ours), and only namespaced keys are accepted
    security::apply_sysctls(&spec.sysctls, Path::new("/proc/sys")).map_err(|e| e.to_string())?;
    security::apply_proc_writes(&spec.proc_writes).map_err(|e| e.to_string())?;
    security::apply_prlimits(&spec.prlimits).map_err(|e| e.to_string())?;
    if spec.seccomp_profile.is_some() && spec.seccomp_bpf.is_none() {
        return Err("lxc.seccomp.profile was not compiled by the front end".into());
    }
    let env = hooks::hook_env(spec, None);
    let mut console_slave: Option<OwnedFd> = None;
    if has(NsKind::Mount) {
        let root =
            mounts::prepare_rootfs(spec, idmapped_rootfs.take()).map_err(|e| e.to_string())?;
        crate::debug!("rootfs {} bound", root.path.display());
        hooks::run_all(spec, HookKind::PreMount, &env).map_err(|e| e.to_string())?;
        if spec.autodev {
            mounts::mount_autodev(&root).map_err(|e| e.to_string())?;
            crate::debug!("autodev tmpfs mounted");
        }
        let own_netns = has(NsKind::Net);
        if let Some(mode) = spec.mount_auto.proc {
            mounts::mount_proc(&root, mode, own_netns).map_err(|e| e.to_string())?;
            crate::debug!("proc mounted ({mode:?})");
        }
        let mut sys_fresh = true;
        if let Some(mode) = spec.mount_auto.sys {
            sys_fresh = mounts::mount_sys(&root, mode, own_netns).map_err(|e| e.to_string())?;
            crate::debug!("sys mounted ({mode:?})");
        }
        wait_go(&mut Vec::new())?;
        unshare_cgroupns(spec)?;
        if let Some(cg) = spec.mount_auto.cgroup {
            if spec.mount_auto.sys.is_some() && (has(NsKind::Cgroup) || cg.full || cg.force) {
                match mounts::mount_cgroups(&root, cg.access, &setup.cgroup_layout) {
                    Ok(()) => {}
                    // over a bound host /sys the host's own cgroup mounts are there already
                    // (read-only); a user namespace may not stack its own over them
                    Err(e) if !sys_fresh => crate::warn!("cgroup mounts skipped: {e}"),
                    Err(e) => return Err(e.to_string()),
                }
                crate::debug!("cgroups mounted ({:?})", cg.access);
            }
        }
        for entry in &spec.mounts {
            let idmapped = if mounts::parse_options(&entry.options).idmap {
                idmapped_entries.pop_front()
            } else {
                None
            };
            mounts::mount_entry(&root, spec, entry, idmapped).map_err(|e| e.to_string())?;
            crate::debug!(
                "mounted entry {} -> {}",
                entry.source,
                entry.target.display()
            );
        }
        hooks::run_all(spec, HookKind::Mount, &env).map_err(|e| e.to_string())?;
        if spec.autodev {
            hooks::run_all(spec, HookKind::Autodev, &env).map_err(|e| e.to_string())?;
            mounts::populate_dev(&root).map_err(|e| e.to_string())?;
        }
        // the console and ttys are ptys of this instance too: lxc.pty.max counts what the
        // container itself may open, so make room for them on top
        let reserved = setup.ttys + u32::from(setup.console);
        let max = if spec.pty_max == 0 {
            0
        } else {
            spec.pty_max + reserved
        };
        mounts::mount_devpts(&root, max, spec.autodev).map_err(|e| e.to_string())?;
        // The console and ttys are ptys of the container's own devpts, so they belong to the
        // container (also to its root in a user namespace) and nothing of the host's devpts is
        // exposed; the masters go to the monitor, which holds them for the container's life.
        let mut masters: Vec<OwnedFd> = Vec::new();
        let mut devices: Vec<(OwnedFd, String)> = Vec::new();
        if setup.console {
            let (master, slave) = mounts::container_pty(&root).map_err(|e| e.to_string())?;
            masters.push(master);
            devices.push((slave, "console".to_string()));
        }
        for i in 1..=setup.ttys {
            let (master, slave) = mounts::container_pty(&root).map_err(|e| e.to_string())?;
            masters.push(master);
            devices.push((slave, format!("tty{i}")));
        }
        for (slave, dev) in &devices {
            match &spec.tty_dir {
                // lxc.tty.dir: the device in /dev/<dir>/, and /dev/<name> a symlink to it
                Some(dir) => {
                    let rel = PathBuf::from(format!("dev/{dir}/{dev}"));
                    mounts::bind_tty(&root, slave, &rel).map_err(|e| e.to_string())?;
                    let link = PathBuf::from(format!("dev/{dev}"));
                    mounts::replace_with_symlink(&root, &link, &format!("{dir}/{dev}"))
                        .map_err(|e| e.to_string())?;
                }
                None => mounts::bind_tty(&root, slave, &PathBuf::from(format!("dev/{dev}")))
                    .map_err(|e| e.to_string())?,
            }
        }
        if setup.console {
            console_slave = devices.into_iter().next().map(|(slave, _)| slave);
        }
        if !masters.is_empty() {
            send_masters(sync, &masters)
                .map_err(|e| format!("hand the console to the monitor: {e}"))?;
        }
        drop(masters);
        mounts::pivot(&root).map_err(|e| e.to_string())?;
        crate::debug!("pivoted into the rootfs");
    }
    if !has(NsKind::Mount) {
        wait_go(&mut Vec::new())?;
        unshare_cgroupns(spec)?;
    }
    if has(NsKind::Net) {
        // the monitor has made our interfaces by now ("go")
        crate::network::configure_inside(setup.ifaces)?;
    }
    // the container's processes must not see the monitor's descriptors
    let sync_fd = sync.as_raw_fd();
    let mut keep = vec![sync_fd];
    if let Some(c) = &console_slave {
        keep.push(c.as_raw_fd());
    }
    warren_sys::close_fds_from(3, &keep).map_err(|e| format!("close descriptors: {e}"))?;

    if let Some(console) = &console_slave {
        nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
        warren_sys::set_controlling_tty(console.as_fd())
            .map_err(|e| format!("make /dev/console the controlling terminal: {e}"))?;
        for target in 0..=2 {
            warren_sys::dup_onto(console.as_fd(), target)
                .map_err(|e| format!("console as fd {target}: {e}"))?;
        }
    } else if !setup.minimal_init {
        nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
        // no console: init must not keep the monitor's stdio (the start status pipe, or the
        // user's terminal with -F)
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("open the container's /dev/null for init's stdio (lxc.autodev = 1 makes one): {e}"))?;
        for target in 0..=2 {
            warren_sys::dup_onto(null.as_fd(), target)
                .map_err(|e| format!("/dev/null as fd {target}: {e}"))?;
        }
    }

    let mut envp: Vec<CString> = Vec::new();
    let mut push_env = |k: &str, v: &str| {
        if let Ok(c) = CString::new(format!("{k}={v}")) {
            envp.push(c);
        }
    };
    push_env("container", "lxc");
    push_env("container_ttys", &tty_names(spec.tty_max));
    push_env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    if setup.minimal_init {
        if let Ok(term) = std::env::var("TERM") {
            push_env("TERM", &term);
        }
    }
    for (k, v) in &spec.environment {
        push_env(k, v);
    }
    hooks::run_all(spec, HookKind::Start, &env).map_err(|e| e.to_string())?;
    if let Some(cwd) = &spec.init.cwd {
        nix::unistd::chdir(cwd).map_err(|e| format!("chdir {}: {e}", cwd.display()))?;
    }
    // seccomp while we still hold CAP_SYS_ADMIN (loading needs it or no_new_privs), then caps
    if let Some(program) = &spec.seccomp_bpf {
        seccomp::install(program).map_err(|e| e.to_string())?;
    }
    if spec.mount_guard {
        // our own mounts are done: from here on the monitor judges every mount call
        let listener =
            warren_sys::install_seccomp_listener(&crate::mountguard::supervised_program())
                .map_err(|e| format!("install the mount guard: {e}"))?;
        send_fds(sync, b'N', std::slice::from_ref(&listener))
            .map_err(|e| format!("hand the mount guard to the monitor: {e}"))?;
    }
    let kept_caps =
        security::kept_caps(&spec.cap_drop, &spec.cap_keep).map_err(|e| e.to_string())?;
    security::drop_bounding(&kept_caps).map_err(|e| e.to_string())?;
    // ids change before the capability sets shrink: setuid/setgid may be among the dropped ones
    if spec.init.uid.is_some() || spec.init.gid.is_some() {
        nix::unistd::setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
    }
    if let Some(gid) = spec.init.gid {
        nix::unistd::setgid(nix::unistd::Gid::from_raw(gid))
            .map_err(|e| format!("setgid {gid}: {e}"))?;
    }
    if let Some(uid) = spec.init.uid {
        nix::unistd::setuid(nix::unistd::Uid::from_raw(uid))
            .map_err(|e| format!("setuid {uid}: {e}"))?;
    }
    security::trim_caps(&kept_caps).map_err(|e| e.to_string())?;
    if spec.no_new_privs {
        nix::sys::prctl::set_no_new_privs().map_err(|e| format!("lxc.no_new_privs: {e}"))?;
    }
    let argv: Vec<CString> = spec
        .init
        .cmd
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(|_| format!("init argument {a:?} contains NUL")))
        .collect::<Result<_, _>>()?;
    let Some(prog) = argv.first() else {
        return Err("empty init command".to_string());
    };
    if setup.minimal_init {
        return minimal_init(prog, &argv, &envp, sync);
    }
    // SIGKILL the container if the monitor dies (LXC's lxc.monitor.signal.pdeath default)
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let err = nix::unistd::execve(prog, &argv, &envp).unwrap_err();
    let hint = if err == nix::errno::Errno::ENOENT {
        " (no such file in the container's rootfs)"
    } else {
        ""
    };
    Err(format!("exec {}: {err}{hint}", spec.init.cmd.join(" ")))
}

/// A new cgroup namespace, once we sit in the payload cgroup: that cgroup becomes its root.
fn unshare_cgroupns(spec: &ContainerSpec) -> Result<(), String> {
    if spec.namespaces.new.contains(&NsKind::Cgroup) {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| format!("unshare cgroup namespace: {e}"))?;
    }
    Ok(())
}

fn tty_names(n: u32) -> String {
    (1..=n)
        .map(|i| format!("tty{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `lxc-execute`'s init: PID 1 forks the command, forwards termination signals to it, reaps every
/// orphan, and exits with the command's status.
fn minimal_init(
    prog: &CString,
    argv: &[CString],
    envp: &[CString],
    sync: &UnixStream,
) -> Result<Never, String> {
    let path_prog = resolve_in_path(prog);
    match warren_sys::fork_process().map_err(|e| format!("fork: {e}"))? {
        warren_sys::Forked::Child => {
            let err = nix::unistd::execve(&path_prog, argv, envp).unwrap_err();
            let _ = writeln!(
                std::io::stderr(),
                "warren-lxc execute: exec {}: {err}",
                prog.to_string_lossy()
            );
            warren_sys::exit_now(127);
        }
        warren_sys::Forked::Parent(cmd_pid) => {
            // the command runs: tell the monitor (EOF on the sync socket), which would otherwise
            // wait for this PID 1 to exec, and it never does
            let _ = sync.shutdown(std::net::Shutdown::Both);
            // the command runs: from here on the sync socket closing means success
            for sig in [
                Signal::SIGTERM,
                Signal::SIGINT,
                Signal::SIGHUP,
                Signal::SIGQUIT,
                Signal::SIGUSR1,
                Signal::SIGUSR2,
            ] {
                let _ = forward::install(sig);
            }
            let cmd = nix::unistd::Pid::from_raw(cmd_pid);
            let mut status = 0;
            loop {
                if let Some(sig) = forward::take() {
                    let _ = signal::kill(cmd, sig);
                }
                match waitpid(None, Some(WaitPidFlag::__WALL)) {
                    Ok(WaitStatus::Exited(pid, code)) if pid == cmd => {
                        status = code;
                        break;
                    }
                    Ok(WaitStatus::Signaled(pid, sig, _)) if pid == cmd => {
                        status = 128 + sig as i32;
                        break;
                    }
                    Ok(_) => continue,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break,
                }
            }
            warren_sys::exit_now(status);
        }
    }
}

fn resolve_in_path(prog: &CString) -> CString {
    let p = prog.to_string_lossy();
    if p.contains('/') {
        return prog.clone();
    }
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        let cand = format!("{dir}/{p}");
        if Path::new(&cand).exists() {
            if let Ok(c) = CString::new(cand) {
                return c;
            }
        }
    }
    prog.clone()
}

/// Signal forwarding for the minimal init: the handler records the last signal; the wait loop
/// (interrupted by it) passes it on to the command.
mod forward {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};
    use std::sync::atomic::{AtomicI32, Ordering};

    static PENDING: AtomicI32 = AtomicI32::new(0);

    extern "C" fn on_signal(sig: i32) {
        PENDING.store(sig, Ordering::SeqCst);
    }

    pub fn install(sig: Signal) -> nix::Result<()> {
        let act = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::empty(),
            SigSet::empty(),
        );
        warren_sys::set_signal_action(sig, &act)
    }

    pub fn take() -> Option<Signal> {
        let s = PENDING.swap(0, Ordering::SeqCst);
        if s == 0 {
            None
        } else {
            Signal::try_from(s).ok()
        }
    }
}

/// `lxc.namespace.share.<kind>`: join another process's (pid or /proc path) or container's (name,
/// same lxcpath) namespace. Only kinds that can be joined by an already-running init are taken.
fn join_shared(spec: &ContainerSpec, kind: NsKind, target: &str) -> Result<(), String> {
    let flag = match kind {
        NsKind::Net => nix::sched::CloneFlags::CLONE_NEWNET,
        NsKind::Uts => nix::sched::CloneFlags::CLONE_NEWUTS,
        NsKind::Ipc => nix::sched::CloneFlags::CLONE_NEWIPC,
        other => {
            return Err(format!(
                "lxc.namespace.share.{} is not supported yet (net, uts and ipc are)",
                other.lxc_name()
            ))
        }
    };
    let path = if target.starts_with('/') {
        PathBuf::from(target)
    } else if let Ok(pid) = target.parse::<u32>() {
        PathBuf::from(format!("/proc/{pid}/ns/{}", kind.lxc_name()))
    } else {
        let resp = crate::proto::call(&spec.lxcpath, target, &crate::proto::Request::Info)
            .map_err(|e| format!("lxc.namespace.share.{}: ask {target}: {e}", kind.lxc_name()))?;
        let pid = resp
            .and_then(|(r, _)| r.info.map(|i| i.pid))
            .ok_or_else(|| {
                format!(
                    "lxc.namespace.share.{}: container {target} is not running",
                    kind.lxc_name()
                )
            })?;
        PathBuf::from(format!("/proc/{pid}/ns/{}", kind.lxc_name()))
    };
    let fd = std::fs::File::open(&path).map_err(|e| {
        format!(
            "lxc.namespace.share.{}: open {}: {e}",
            kind.lxc_name(),
            path.display()
        )
    })?;
    nix::sched::setns(fd, flag).map_err(|e| {
        format!(
            "lxc.namespace.share.{}: join {}: {e}",
            kind.lxc_name(),
            path.display()
        )
    })
}

/// Send the pty masters to the monitor: one message, a `P` and the descriptors.
fn send_masters(sync: &UnixStream, masters: &[OwnedFd]) -> std::io::Result<()> {
    if masters.len() > 64 {
        return Err(std::io::Error::other("more than 63 ttys (lxc.tty.max)"));
    }
    send_fds(sync, b'P', masters)
}

/// One message to the monitor: a tag byte (`P` pty masters, `N` the mount guard's listener) and
/// the descriptors.
fn send_fds(sync: &UnixStream, tag: u8, fds: &[OwnedFd]) -> std::io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let raw: Vec<i32> = fds.iter().map(|m| m.as_raw_fd()).collect();
    let tag = [tag];
    let iov = [std::io::IoSlice::new(&tag)];
    sendmsg::<()>(
        sync.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&raw)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(std::io::Error::from)?;
    Ok(())
}
