//! Running a command inside a running container (`lxc-attach`): init's pidfd from the monitor,
//! join its cgroup, setns into its namespaces, fork into its pid namespace, a pty from the
//! container's own devpts when stdin is a terminal, exec; the command's exit status comes back.

use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::proto::{self, InitInfo, Request};
use crate::spec::NsKind;
use crate::term;

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("{0} is not running")]
    NotRunning(String),
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("monitor of {name} refused: {msg}")]
    Refused { name: String, msg: String },
    #[error("{0}")]
    Security(String),
}

/// The container's restrictions, applied to the attached command as to init.
struct Restrict<'a> {
    /// The compiled seccomp filter init runs under.
    program: Option<&'a [u8]>,
    kept: &'a caps::CapsHashSet,
    no_new_privs: bool,
    /// The container has a user namespace of its own.
    userns: bool,
}

fn sys(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AttachError {
    let what = what.into();
    move |source| AttachError::Sys { what, source }
}

/// When to give the command a pty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PtyMode {
    /// When stdin is a terminal.
    #[default]
    Auto,
    Never,
}

#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    /// argv; empty runs the user's login shell from the container's /etc/passwd (or /bin/sh).
    pub command: Vec<String>,
    /// `--clear-env`: start from an empty environment (LXC keeps the caller's by default).
    pub clear_env: bool,
    /// `--keep-var NAME` with `--clear-env`.
    pub keep_vars: Vec<String>,
    /// `-v NAME=VALUE`.
    pub extra_env: Vec<(String, String)>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `--cwd`; default: the caller's directory if the container has it, else `/`.
    pub cwd: Option<PathBuf>,
    /// The caller's working directory (filled by the front end).
    pub caller_cwd: Option<PathBuf>,
    pub pty: PtyMode,
    /// `-s`: only these namespaces (default: all the container has).
    pub namespaces: Option<Vec<NsKind>>,
    /// `-e`/`--elevated-privileges`: skip cgroup joining.
    pub skip_cgroup: bool,
}

/// Attach and wait. Returns the command's exit status (128+N when killed by signal N).
pub fn attach(lxcpath: &Path, name: &str, opts: &AttachOptions) -> Result<i32, AttachError> {
    let Some((resp, mut fds)) =
        proto::call(lxcpath, name, &Request::InitPidfd).map_err(sys("ask the monitor"))?
    else {
        return Err(AttachError::NotRunning(name.to_string()));
    };
    if !resp.ok {
        return Err(AttachError::Refused {
            name: name.to_string(),
            msg: resp.error.unwrap_or_default(),
        });
    }
    let (Some(info), Some(pidfd)) = (resp.info, fds.pop()) else {
        return Err(AttachError::NotRunning(name.to_string()));
    };
    let use_pty =
        opts.pty == PtyMode::Auto && nix::unistd::isatty(warren_sys::std_fd(0)).unwrap_or(false);
    let pty = if use_pty {
        Some(open_container_pty(info.pid).map_err(sys("allocate a pty in the container"))?)
    } else {
        None
    };
    let env = build_env(opts, &info);
    let kept = crate::security::kept_caps(&info.cap_drop, &info.cap_keep)
        .map_err(|e| AttachError::Security(e.to_string()))?;
    // the monitor connection the mount guard is handed over on, opened while we can reach the
    // monitor (the child enters the container's network namespace), and the socket pair that
    // carries the listener's number out of the pid namespace
    // (an attach that stays in the host's mount namespace, `-s` without MOUNT, mounts there)
    let guard_conn = if info.mount_guard
        && opts
            .namespaces
            .as_ref()
            .is_none_or(|l| l.contains(&NsKind::Mount))
    {
        Some(
            proto::connect(lxcpath, name)
                .map_err(sys("connect to the monitor"))?
                .ok_or_else(|| AttachError::NotRunning(name.to_string()))?,
        )
    } else {
        None
    };
    let restrict = Restrict {
        program: info.seccomp_bpf.as_deref(),
        kept: &kept,
        no_new_privs: info.no_new_privs,
        userns: info.namespaces.contains(&NsKind::User),
    };
    // Born in the container's cgroup2 directory (clone3 CLONE_INTO_CGROUP) rather than moved
    // there: a move takes the kernel's global threadgroup lock, whose first writer after an idle
    // spell waits a whole RCU grace period (10-20 ms). The v1 hierarchies are joined by the
    // child's single thread moving itself, which takes no global lock.
    let unified_dir = info
        .cgroup_paths
        .iter()
        .filter(|_| !opts.skip_cgroup)
        .find(|p| p.join("cgroup.controllers").exists())
        .and_then(|p| std::fs::File::open(p).ok());
    let forked = match &unified_dir {
        Some(dir) => match warren_sys::clone_into_cgroup(0, dir.as_fd()) {
            Ok(f) => Ok((f, true)),
            Err(_) => warren_sys::fork_process().map(|f| (f, false)),
        },
        None => warren_sys::fork_process().map(|f| (f, false)),
    };
    drop(unified_dir);
    let (forked, born_in_unified) = forked.map_err(sys("fork"))?;
    match forked {
        warren_sys::Forked::Child => {
            let code = match enter_and_exec(
                opts,
                born_in_unified,
                &info,
                &pidfd,
                pty.as_ref().map(|p| &p.1),
                env,
                &restrict,
                guard_conn,
            ) {
                Ok(code) => code,
                Err(msg) => {
                    let _ = writeln!(std::io::stderr(), "warren-lxc attach: {msg}");
                    if msg.contains("No such file") {
                        127
                    } else {
                        126
                    }
                }
            };
            warren_sys::exit_now(code)
        }
        warren_sys::Forked::Parent(child) => {
            drop(pidfd);
            drop(guard_conn);
            if let Some((master, slave)) = pty {
                drop(slave);
                let _ = term::proxy(master.as_fd(), None);
            }
            Ok(wait_code(child))
        }
    }
}

fn wait_code(pid: i32) -> i32 {
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => continue,
            Err(_) => return 255,
        }
    }
}

/// A pty from the container's devpts instance (so the command sees a /dev/pts/N that exists inside).
fn open_container_pty(init_pid: i32) -> std::io::Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    // resolved inside the container's root: a symlink it planted can't make us open a host file
    let root = nix::fcntl::open(
        format!("/proc/{init_pid}/root").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(std::io::Error::from)?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let master = openat2(&root, "dev/pts/ptmx", how).map_err(std::io::Error::from)?;
    let fs = nix::sys::statfs::fstatfs(&master).map_err(std::io::Error::from)?;
    if fs.filesystem_type() != nix::sys::statfs::DEVPTS_SUPER_MAGIC {
        return Err(std::io::Error::other(
            "the container's /dev/pts/ptmx is not a devpts multiplexer",
        ));
    }
    warren_sys::unlock_pty(master.as_fd())?;
    let slave = warren_sys::open_pty_peer(master.as_fd())?;
    if let Ok(size) = warren_sys::get_window_size(warren_sys::std_fd(0)) {
        let _ = warren_sys::set_window_size(master.as_fd(), size);
    }
    Ok((master, slave))
}

fn build_env(opts: &AttachOptions, info: &InitInfo) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = if opts.clear_env {
        std::env::vars()
            .filter(|(k, _)| opts.keep_vars.contains(k) || k == "TERM")
            .collect()
    } else {
        std::env::vars().collect()
    };
    let mut set = |k: &str, v: &str| {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    };
    set("container", "lxc");
    if opts.clear_env {
        set(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
    }
    for (k, v) in &info.environment {
        set(k, v);
    }
    for (k, v) in &opts.extra_env {
        set(k, v);
    }
    env
}

fn ns_flag(k: NsKind) -> CloneFlags {
    match k {
        NsKind::Mount => CloneFlags::CLONE_NEWNS,
        NsKind::Pid => CloneFlags::CLONE_NEWPID,
        NsKind::Uts => CloneFlags::CLONE_NEWUTS,
        NsKind::Ipc => CloneFlags::CLONE_NEWIPC,
        NsKind::Net => CloneFlags::CLONE_NEWNET,
        NsKind::User => CloneFlags::CLONE_NEWUSER,
        NsKind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        NsKind::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// In the forked child: join, enter, fork into the pid namespace, exec. Returns the exit code to
/// pass up, or an error line.
// (everything the child needs between fork and exec, each prepared before the fork)
#[allow(clippy::too_many_arguments)]
fn enter_and_exec(
    opts: &AttachOptions,
    born_in_unified: bool,
    info: &InitInfo,
    pidfd: &OwnedFd,
    slave: Option<&OwnedFd>,
    env: Vec<(String, String)>,
    restrict: &Restrict<'_>,
    guard_conn: Option<UnixStream>,
) -> Result<i32, String> {
    // Until it execs the command, this process runs warren's binary inside the container's pid
    // namespace: non-dumpable, so nothing in the container can open /proc/PID/exe (or its memory)
    // and overwrite the host binary through it (runc CVE-2019-5736). exec makes it dumpable again.
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("set non-dumpable: {e}"))?;
    if !opts.skip_cgroup {
        let me = std::process::id().to_string();
        for p in &info.cgroup_paths {
            let unified = p.join("cgroup.controllers").exists();
            if unified && born_in_unified {
                continue;
            }
            // v1: this process is one thread, moving itself (no global lock)
            if !unified && std::fs::write(p.join("tasks"), "0").is_ok() {
                continue;
            }
            // best effort per hierarchy: a hierarchy removed meanwhile must not fail the attach
            let _ = std::fs::write(p.join("cgroup.procs"), &me);
        }
    }
    let wanted: Vec<NsKind> = match &opts.namespaces {
        Some(list) => info
            .namespaces
            .iter()
            .copied()
            .filter(|k| list.contains(k))
            .collect(),
        None => info.namespaces.clone(),
    };
    let mut flags = CloneFlags::empty();
    for k in &wanted {
        flags |= ns_flag(*k);
    }
    if !flags.is_empty() {
        nix::sched::setns(pidfd.as_fd(), flags)
            .map_err(|e| format!("enter the container's namespaces: {e}"))?;
    }
    if let Some(conn) = guard_conn {
        // Before anything of ours is in the container's pid namespace (where its root could
        // trace it): the mount guard goes on here, inherited by the command, and the monitor
        // takes the listener over. Ours is closed before the fork, so the command never holds
        // a descriptor that could answer its own mount calls.
        hand_over_guard(conn)?;
    }
    match warren_sys::fork_process().map_err(|e| format!("fork: {e}"))? {
        warren_sys::Forked::Parent(pid) => Ok(wait_code(pid)),
        warren_sys::Forked::Child => {
            let err = exec_command(opts, slave, env, restrict);
            let _ = writeln!(std::io::stderr(), "warren-lxc attach: {err}");
            warren_sys::exit_now(if err.contains("No such file") {
                127
            } else {
                126
            });
        }
    }
}

/// Installs the supervised mount filter in this process (its children inherit it) and has the
/// monitor adopt the listener (pidfd_getfd on our host pid); closes our copy.
fn hand_over_guard(mut conn: UnixStream) -> Result<(), String> {
    let listener = warren_sys::install_seccomp_listener(&crate::mountguard::supervised_program())
        .map_err(|e| format!("install the mount guard: {e}"))?;
    let req = Request::AdoptGuard {
        pid: std::process::id() as i32,
        fd: listener.as_raw_fd(),
    };
    let answer = proto::send_request(&mut conn, &req)
        .and_then(|_| proto::read_response(&mut conn))
        .map_err(|e| format!("hand the mount guard to the monitor: {e}"))?;
    drop(listener);
    if !answer.0.ok {
        return Err(format!(
            "the monitor did not take over the mount guard: {}",
            answer.0.error.unwrap_or_default()
        ));
    }
    Ok(())
}

fn exec_command(
    opts: &AttachOptions,
    slave: Option<&OwnedFd>,
    mut env: Vec<(String, String)>,
    restrict: &Restrict<'_>,
) -> String {
    if let Some(slave) = slave {
        if let Err(e) = nix::unistd::setsid() {
            return format!("setsid: {e}");
        }
        if let Err(e) = warren_sys::set_controlling_tty(slave.as_fd()) {
            return format!("controlling terminal: {e}");
        }
        for t in 0..=2 {
            if let Err(e) = warren_sys::dup_onto(slave.as_fd(), t) {
                return format!("pty as fd {t}: {e}");
            }
        }
    }
    let uid = opts.uid.unwrap_or(0);
    let passwd = lookup_passwd(uid);
    match &opts.cwd {
        Some(cwd) => {
            if let Err(e) = nix::unistd::chdir(cwd) {
                return format!("chdir {}: {e}", cwd.display());
            }
        }
        // as lxc-attach: the caller's directory when the container has it, else /
        None => {
            let here = opts
                .caller_cwd
                .as_deref()
                .filter(|d| nix::unistd::chdir(*d).is_ok());
            if here.is_none() {
                if let Err(e) = nix::unistd::chdir("/") {
                    return format!("chdir /: {e}");
                }
            }
        }
    }
    if opts.clear_env {
        if let Some((_, home, _)) = &passwd {
            env.retain(|(k, _)| k != "HOME");
            env.push(("HOME".into(), home.clone()));
        }
    }
    // as for init: seccomp while CAP_SYS_ADMIN is still held, then the capability sets
    if let Some(program) = restrict.program {
        if let Err(e) = crate::seccomp::install(program) {
            return e.to_string();
        }
    }

    if let Err(e) = crate::security::drop_bounding(restrict.kept) {
        return e.to_string();
    }
    // in a user namespace setns leaves us as the overflow user: become its root unless -u/-g
    // say otherwise
    let default_id = if restrict.userns { Some(0) } else { None };
    if let Some(gid) = opts
        .gid
        .or(passwd.as_ref().map(|p| p.0).filter(|_| opts.uid.is_some()))
        .or(default_id)
    {
        if let Err(e) = nix::unistd::setgroups(&[]) {
            return format!("setgroups: {e}");
        }
        if let Err(e) = nix::unistd::setgid(nix::unistd::Gid::from_raw(gid)) {
            return format!("setgid {gid}: {e}");
        }
    }
    if let Some(uid) = opts.uid.or(default_id) {
        if opts.gid.is_none() && default_id.is_none() {
            // a new uid without a gid of its own must not keep root's supplementary groups
            if let Err(e) = nix::unistd::setgroups(&[]) {
                return format!("setgroups: {e}");
            }
        }
        if let Err(e) = nix::unistd::setuid(nix::unistd::Uid::from_raw(uid)) {
            return format!("setuid {uid}: {e}");
        }
    }
    // the capability sets shrink after the id change, which may need CAP_SETUID/CAP_SETGID
    if let Err(e) = crate::security::trim_caps(restrict.kept) {
        return e.to_string();
    }
    // nothing of the caller's but stdio crosses into the container (runc CVE-2024-21626)
    if let Err(e) = warren_sys::close_fds_from(3, &[]) {
        return format!("close inherited descriptors: {e}");
    }
    if restrict.no_new_privs {
        if let Err(e) = nix::sys::prctl::set_no_new_privs() {
            return format!("no_new_privs: {e}");
        }
    }
    let argv: Vec<String> = if opts.command.is_empty() {
        let shell = passwd
            .as_ref()
            .map(|p| p.2.clone())
            .filter(|s| !s.is_empty() && Path::new(s).exists())
            .unwrap_or_else(|| "/bin/sh".to_string());
        vec![shell]
    } else {
        opts.command.clone()
    };
    let Ok(cargv) = argv
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()
    else {
        return "argument contains a NUL byte".to_string();
    };
    let cenv: Vec<CString> = env
        .iter()
        .filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok())
        .collect();
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    let prog = resolve(&argv[0], &path);
    let Ok(cprog) = CString::new(prog) else {
        return "program name contains a NUL byte".to_string();
    };
    let err = match nix::unistd::execve(&cprog, &cargv, &cenv) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    format!("exec {}: {}", argv[0], std::io::Error::from(err))
}

fn resolve(prog: &str, path: &str) -> String {
    if prog.contains('/') {
        return prog.to_string();
    }
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let cand = format!("{dir}/{prog}");
        if Path::new(&cand).is_file() {
            return cand;
        }
    }
    prog.to_string()
}

/// (gid, home, shell) of `uid` from the container's /etc/passwd (we are in its mount namespace).
fn lookup_passwd(uid: u32) -> Option<(u32, String, String)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 7 && f[2].parse::<u32>().ok()? == uid {
            Some((f[3].parse().ok()?, f[5].to_string(), f[6].to_string()))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keeps_caller_and_marks_container() {
        let info = InitInfo {
            environment: vec![("FOO".into(), "bar".into())],
            ..Default::default()
        };
        let opts = AttachOptions {
            extra_env: vec![("X".into(), "1".into())],
            ..Default::default()
        };
        let env = build_env(&opts, &info);
        assert!(env.contains(&("container".into(), "lxc".into())));
        assert!(env.contains(&("FOO".into(), "bar".into())));
        assert!(env.contains(&("X".into(), "1".into())));
        let cleared = build_env(
            &AttachOptions {
                clear_env: true,
                ..Default::default()
            },
            &info,
        );
        assert!(cleared.iter().any(|(k, _)| k == "PATH"));
        assert!(!cleared.iter().any(|(k, _)| k == "CARGO"));
    }
}
