//! The per-container monitor: owns the container from clone to teardown. It holds the cgroups, the
//! console and tty masters (with the console ring buffer), serves the command socket, reaps init,
//! restarts on reboot, runs stop hooks and removes everything the start made.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use crate::cgroup::{self, ContainerCgroup, Hierarchies};
use crate::container::{self, ChildSetup};
use crate::hooks;
use crate::proto::{self, InitInfo, Request, Response, State};
use crate::spec::{CgroupSpec, ContainerSpec, HookKind, NsKind};

/// The cgroup below the payload cgroup that init is put in (the name LXC and Incus use).
pub const INNER_CGROUP: &str = ".lxc";

/// Why a start failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0} is already running")]
    AlreadyRunning(String),
    #[error("{0}")]
    Cgroup(#[from] cgroup::CgroupError),
    #[error("{0}")]
    Hook(#[from] hooks::HookError),
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

fn sys(what: impl Into<String>) -> impl FnOnce(io::Error) -> StartError {
    let what = what.into();
    move |source| StartError::Sys { what, source }
}

/// Set by SIGTERM/SIGINT to the monitor: stop the container cleanly.
static TERMINATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_terminate(_: i32) {
    TERMINATE.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// How the monitor runs.
#[derive(Debug, Default)]
pub struct MonitorOptions {
    /// `lxc-start -F`: proxy the console to this process's stdin/stdout.
    pub foreground: bool,
    /// `lxc-execute`: no console; the command inherits stdio and a minimal init runs it.
    pub execute: bool,
}

/// Where the monitor reports the outcome of the start: a line `ok PID` or `error MESSAGE`.
pub type StatusSink = Option<Box<dyn Write>>;

/// A pty master the monitor holds: the container's console or one of its ttys (the slave lives in
/// the container's own devpts).
struct Pty {
    master: OwnedFd,
    /// For the console: a slave kept open, so the master doesn't report a hangup (and poll
    /// doesn't spin) while nothing in the container has the console open.
    _slave: Option<OwnedFd>,
}

/// The console's ring buffer: the last `cap` bytes the container wrote to its console.
struct Ring {
    buf: VecDeque<u8>,
    cap: usize,
}

impl Ring {
    fn push(&mut self, data: &[u8]) {
        if self.cap == 0 {
            return;
        }
        let data = if data.len() > self.cap {
            &data[data.len() - self.cap..]
        } else {
            data
        };
        let overflow = (self.buf.len() + data.len()).saturating_sub(self.cap);
        self.buf.drain(..overflow);
        self.buf.extend(data);
    }
}

/// One running instance of the container (a reboot makes a new one).
struct Instance {
    pid: i32,
    pidfd: OwnedFd,
    payload: ContainerCgroup,
    /// `<payload>/.lxc`, where init and everything in the container lives.
    inner: ContainerCgroup,
    console: Option<Pty>,
    ttys: Vec<Pty>,
    /// The supervisor of a privileged container's mount calls.
    guard: Option<crate::mountguard::Guard>,
    /// The network interfaces made for it.
    ifaces: Vec<crate::network::Iface>,
    /// Its mount namespace (see `Monitor::stopped_mounts`).
    mounts: Option<std::fs::File>,
    /// Its network namespace, held while it has physical links to give back.
    netns: Option<std::fs::File>,
}

struct Monitor {
    /// Mount guards of attached processes (privileged containers), until their processes exit.
    attach_guards: Vec<crate::mountguard::Guard>,
    spec: ContainerSpec,
    opts: MonitorOptions,
    hier: Hierarchies,
    listener: UnixListener,
    state: State,
    ring: Ring,
    logfile: Option<File>,
    console_clients: Vec<UnixStream>,
    tty_clients: Vec<(usize, UnixStream)>,
    stop_waiters: Vec<UnixStream>,
    state_waiters: Vec<(UnixStream, Vec<State>)>,
    reboot_requested: bool,
    stop_deadline: Option<Instant>,
    /// When the monitor moves into its own cgroup, and the hierarchies it makes it in.
    join_cgroup_at: Option<(Instant, Hierarchies)>,
    /// The helper child moving the monitor into `monitor_cg` (see [`join_in_background`]),
    /// until it is reaped.
    cgroup_joiner: Option<i32>,
    /// The monitor's own cgroup (`warren.monitor.NAME`), joined once the container runs.
    monitor_cg: Option<ContainerCgroup>,
    stdin_open: bool,
    /// The host terminal `lxc.console.path` names, joined to the console.
    console_peer: Option<File>,
    /// Whether input is still read from it (not after it hung up).
    console_peer_readable: bool,
    /// The cgroup2 device program attached to the running instance's payload cgroup (what a
    /// device rule added later replaces).
    device_program: std::cell::RefCell<Option<OwnedFd>>,
    /// The stopped container's mount namespace, held until STOPPED has been answered: the
    /// kernel takes a namespace's mounts down (and waits out an RCU grace period) in the exit of
    /// its last process, which would delay init's death, and so the stop, by up to a millisecond.
    /// Dropped, the teardown runs here, after the answer.
    stopped_mounts: Option<std::fs::File>,
}

/// How long after the start the monitor leaves its caller's cgroup for its own.
const JOIN_CGROUP_AFTER: Duration = Duration::from_millis(100);

/// How long the monitor waits idle before letting go of its code pages.
const IDLE_BEFORE_RELEASE_MS: u16 = 2000;

/// Run the monitor of `spec` until the container stops. Returns the exit code of init (for
/// `execute`: the command's).
pub fn run(
    spec: ContainerSpec,
    opts: MonitorOptions,
    status: StatusSink,
) -> Result<i32, StartError> {
    run_detected(spec, opts, status, Hierarchies::detect())
}

/// [`run`] with the host's cgroup hierarchies already detected (a spawned monitor does that while
/// it waits for its spec).
pub fn run_detected(
    spec: ContainerSpec,
    opts: MonitorOptions,
    mut status: StatusSink,
    hierarchies: Result<Hierarchies, crate::cgroup::CgroupError>,
) -> Result<i32, StartError> {
    let result = run_inner(spec, opts, &mut status, hierarchies);
    if let Err(e) = &result {
        crate::error!("start failed: {e}");
    }
    if let (Err(e), Some(s)) = (&result, status.as_mut()) {
        let _ = writeln!(s, "error {e}");
        let _ = s.flush();
    }
    result
}

fn run_inner(
    spec: ContainerSpec,
    opts: MonitorOptions,
    status: &mut StatusSink,
    hierarchies: Result<Hierarchies, crate::cgroup::CgroupError>,
) -> Result<i32, StartError> {
    let addr = proto::socket_addr(&spec.lxcpath, &spec.name).map_err(sys("command socket name"))?;
    let listener = match UnixListener::bind_addr(&addr) {
        Ok(l) => l,
        Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
            return Err(StartError::AlreadyRunning(spec.name.clone()))
        }
        Err(e) => return Err(sys("bind the command socket")(e)),
    };
    listener
        .set_nonblocking(true)
        .map_err(sys("command socket"))?;
    for sig in [Signal::SIGPIPE, Signal::SIGHUP] {
        let _ = warren_sys::set_signal_ignored(sig, true);
    }
    if !opts.execute {
        // the container is stopped cleanly, not abandoned, when the monitor is asked to go
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet};
        let act = SigAction::new(
            SigHandler::Handler(on_terminate),
            SaFlags::empty(),
            SigSet::empty(),
        );
        for sig in [Signal::SIGTERM, Signal::SIGINT] {
            let _ = warren_sys::set_signal_action(sig, &act);
        }
    }
    let mut hier = hierarchies?;
    if !nix::unistd::geteuid().is_root() {
        hier = hier.delegated()?;
    }
    let logfile = match &spec.console.logfile {
        Some(p) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(sys(format!("console log file {}", p.display())))?,
        ),
        None => None,
    };
    // `lxc.console.path = /dev/...`: the host terminal joined to the console, in raw mode (the
    // container's own terminal does the line discipline)
    let console_peer = match spec.console.path.as_ref().filter(|_| spec.console.enabled) {
        Some(p) => {
            use std::os::unix::fs::OpenOptionsExt;
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(p)
                .map_err(sys(format!("lxc.console.path {}", p.display())))?;
            if let Ok(mut t) = nix::sys::termios::tcgetattr(&f) {
                nix::sys::termios::cfmakeraw(&mut t);
                let _ = nix::sys::termios::tcsetattr(&f, nix::sys::termios::SetArg::TCSANOW, &t);
            }
            Some(f)
        }
        None => None,
    };
    let mut m = Monitor {
        console_peer_readable: console_peer.is_some(),
        console_peer,
        ring: Ring {
            buf: VecDeque::new(),
            cap: spec.console.buffer_size,
        },
        spec,
        opts,
        hier,
        listener,
        state: State::Starting,
        logfile,
        console_clients: Vec::new(),
        tty_clients: Vec::new(),
        stop_waiters: Vec::new(),
        state_waiters: Vec::new(),
        reboot_requested: false,
        stop_deadline: None,
        monitor_cg: None,
        cgroup_joiner: None,
        join_cgroup_at: None,
        stdin_open: true,
        device_program: Default::default(),
        attach_guards: Vec::new(),
        stopped_mounts: None,
    };
    let tracking = m.hier.tracking_only();
    let result = m.lifecycle(status, &tracking);
    // the monitor must be in its cgroup before it can leave it
    m.reap_cgroup_joiner(true);
    let monitor_cg = m.monitor_cg.take();
    let env = hooks::hook_env(&m.spec, Some("stop"));
    if let Err(e) = hooks::run_all(&m.spec, HookKind::PostStop, &env) {
        crate::error!("{e}");
    }
    if m.spec.ephemeral && result.is_ok() {
        let dir = m.spec.lxcpath.join(&m.spec.name);
        let _ = std::fs::remove_dir_all(dir);
    }
    m.set_state(State::Stopped);
    // The container is gone: let go of the command socket (its name too, so the container can
    // start again at once) and of every client waiting for the stop. Only then leave our own
    // cgroup: that migration waits for an RCU grace period, several milliseconds no caller
    // needs to wait for. The container's mounts go after that too.
    let stopped_mounts = m.stopped_mounts.take();
    drop(m);
    drop(stopped_mounts);
    if let Some(cg) = monitor_cg {
        leave_to_root(&tracking);
        let _ = cg.remove();
    }
    result
}

/// Moves the monitor into its own cgroup from a helper child, which the monitor reaps later.
/// The move is a `cgroup.procs` write (cgroup2 has no other way to move a process between
/// domains), which takes the kernel's global threadgroup lock: after an idle spell that waits a
/// whole RCU grace period (10-20 ms), and a monitor blocked in it would answer nothing meanwhile
/// (the `wait` or `stop` that usually follows a start at once). Without a helper (fork refused)
/// the monitor moves itself.
fn join_in_background(cg: &ContainerCgroup) -> Option<i32> {
    let me = std::process::id() as i32;
    match warren_sys::fork_process() {
        Ok(warren_sys::Forked::Child) => {
            let code = i32::from(cg.attach(me).is_err());
            warren_sys::exit_now(code)
        }
        Ok(warren_sys::Forked::Parent(pid)) => Some(pid),
        Err(_) => {
            let _ = cg.attach(me);
            None
        }
    }
}

impl Monitor {
    /// Out of the caller's cgroup (a session manager reaping it must not take the container
    /// with it) into the monitor's own, made now.
    fn join_own_cgroup(&mut self, tracking: &Hierarchies) {
        // the previous monitor of this container may still be on its way out of the usual
        // name (it leaves its cgroup after answering the stop): then one of our own
        let name = cgroup::monitor_name(&self.spec.lxcpath, &self.spec.name);
        self.monitor_cg = tracking
            .create(&name)
            .or_else(|_| tracking.create(&format!("{name}-{}", std::process::id())))
            .ok();
        if let Some(cg) = &self.monitor_cg {
            self.cgroup_joiner = join_in_background(cg);
        }
    }

    /// Collects the cgroup joiner once it is done (`wait`: until it is).
    fn reap_cgroup_joiner(&mut self, wait: bool) {
        let Some(pid) = self.cgroup_joiner else {
            return;
        };
        let flags = (!wait).then_some(nix::sys::wait::WaitPidFlag::WNOHANG);
        let status = loop {
            match waitpid(nix::unistd::Pid::from_raw(pid), flags) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other,
            }
        };
        match status {
            Ok(WaitStatus::StillAlive) => {}
            Ok(WaitStatus::Exited(_, code)) => {
                if code == 0 {
                    crate::debug!("monitor cgroup joined");
                }
                self.cgroup_joiner = None;
            }
            _ => self.cgroup_joiner = None,
        }
    }

    fn lifecycle(
        &mut self,
        status: &mut StatusSink,
        tracking: &Hierarchies,
    ) -> Result<i32, StartError> {
        let env = hooks::hook_env(&self.spec, None);
        let mut first = true;
        loop {
            // (a reboot: the monitor's move into its own cgroup must be over before it steps
            // through the container's for the clone)
            self.reap_cgroup_joiner(true);
            self.set_state(State::Starting);
            hooks::run_all(&self.spec, HookKind::PreStart, &env)?;
            let inst = match self.start_instance() {
                Ok(i) => i,
                Err(e) => {
                    self.set_state(State::Aborting);
                    return Err(e);
                }
            };
            if let Err(e) = hooks::run_all(&self.spec, HookKind::StartHost, &env) {
                self.teardown(inst, true);
                return Err(e.into());
            }
            self.set_state(State::Running);
            crate::info!(
                "container {} is RUNNING, init pid {}",
                self.spec.name,
                inst.pid
            );
            if first {
                if let Some(s) = status.as_mut() {
                    let _ = writeln!(s, "ok {}", inst.pid);
                    let _ = s.flush();
                }
                *status = None;
                first = false;
                // out of the caller's cgroup (a session manager reaping it must not take the
                // container with it); done after the caller has its answer
                // (not for execute: that monitor is the caller itself, in the foreground)
                // (a while later: a container stopped again at once never needs it)
                if !self.opts.execute {
                    self.join_cgroup_at =
                        Some((Instant::now() + JOIN_CGROUP_AFTER, tracking.clone()));
                }
            }
            let (code, rebooting) = self.serve(&inst);
            // what the stop hooks see in LXC_TARGET, also for a reboot from inside
            self.reboot_requested = rebooting;
            self.teardown(inst, false);
            if !rebooting {
                return Ok(code);
            }
            crate::info!("container {} is rebooting", self.spec.name);
            self.reboot_requested = false;
            self.stop_deadline = None;
        }
    }

    fn start_instance(&mut self) -> Result<Instance, StartError> {
        let spec = &self.spec;
        let want_console = spec.console.enabled && !self.opts.execute;
        let want_ttys = if self.opts.execute { 0 } else { spec.tty_max };
        let (parent_sync, child_sync) = UnixStream::pair().map_err(sys("sync socket"))?;
        let mut flags = 0;
        for ns in &spec.namespaces.new {
            flags |= match ns {
                NsKind::Mount => libc::CLONE_NEWNS,
                NsKind::Pid => libc::CLONE_NEWPID,
                NsKind::Uts => libc::CLONE_NEWUTS,
                NsKind::Ipc => libc::CLONE_NEWIPC,
                NsKind::Net => libc::CLONE_NEWNET,
                NsKind::User => libc::CLONE_NEWUSER,
                // unshared by the child once it sits in its cgroup
                NsKind::Cgroup => 0,
                NsKind::Time => libc::CLONE_NEWTIME,
            };
        }
        // interfaces are checked before anything is made: a bad link fails the start here
        let mut ifaces = crate::network::plan(spec).map_err(StartError::Setup)?;
        // Clone first: the child builds its filesystem while we make and fill its cgroup (the
        // child waits for us only before its cgroup namespace and exec).
        crate::debug!("cloning init with flags {flags:#x}");
        // the child starts in the rootfs: in a user namespace it may not be able to reach it by
        // path (see mounts::prepare_rootfs)
        std::env::set_current_dir(&spec.rootfs.path)
            .map_err(sys(format!("rootfs {}", spec.rootfs.path.display())))?;
        // Init is born in its cgroups, so that no migration of it waits on the kernel's global
        // threadgroup lock (its first writer after an idle spell waits a whole RCU grace period,
        // 10-20 ms): cgroup2 through clone3(CLONE_INTO_CGROUP), and the v1 hierarchies by the
        // monitor stepping into them alone for the clone (a thread moving itself takes no global
        // lock) and straight back out. Where either can't be done, init is moved afterwards.
        let (payload, inner) = match self.make_cgroups() {
            Ok(pair) => pair,
            Err(e) => {
                let _ = std::env::set_current_dir("/");
                return Err(e);
            }
        };
        let inner_fd = match inner.unified_path().map(std::fs::File::open) {
            Some(Ok(f)) => Some(f),
            Some(Err(e)) => {
                let _ = std::env::set_current_dir("/");
                let _ = payload.remove();
                return Err(sys("open the container's cgroup2 directory")(e));
            }
            None => None,
        };
        let v1_homes = if self.hier.v1().is_empty() {
            None
        } else {
            self.hier.own_v1_paths().ok()
        };
        // a v1 cpuset sets the CPU affinity of whatever joins it: the monitor's own is put back
        // when it leaves
        let affinity = v1_homes
            .as_ref()
            .and_then(|_| nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok());
        // home, else (a home removed meanwhile) the hierarchies' roots or a regular user's own
        let roots: Vec<std::path::PathBuf> = self
            .hier
            .home_paths()
            .into_iter()
            .take(self.hier.v1().len())
            .collect();
        let go_home = |homes: &[std::path::PathBuf]| {
            let left = cgroup::leave_v1_self(homes).or_else(|e| {
                crate::warn!("back to the monitor's own cgroups: {e}");
                cgroup::leave_v1_self(&roots)
            });
            if let Some(a) = &affinity {
                let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), a);
            }
            left
        };
        let entered_v1 = match &v1_homes {
            Some(homes) => match inner.enter_v1_self() {
                Ok(()) => true,
                Err(e) => {
                    crate::debug!("init will be moved into its v1 cgroups: {e}");
                    if let Err(e) = go_home(homes) {
                        let _ = std::env::set_current_dir("/");
                        return Err(StartError::Setup(format!(
                            "the monitor could not leave the container's cgroups: {e}"
                        )));
                    }
                    false
                }
            },
            None => false,
        };
        let mut born_in_cgroups = self.hier.v1().is_empty() || entered_v1;
        let forked = match &inner_fd {
            Some(f) => match warren_sys::clone_into_cgroup(flags, f.as_fd()) {
                // a kernel without clone3's cgroup field (before 5.7): moved afterwards
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::E2BIG)) => {
                    born_in_cgroups = false;
                    warren_sys::clone_namespaces(flags)
                }
                other => other,
            },
            None => warren_sys::clone_namespaces(flags),
        };
        drop(inner_fd);
        // (only the monitor gets here on success: the child runs the container below)
        let left_v1 = match (&forked, &v1_homes) {
            (Ok(warren_sys::Forked::Child), _) => Ok(()),
            (_, Some(homes)) if entered_v1 => go_home(homes),
            _ => Ok(()),
        };
        // (a pids limit of 1 has no room for the monitor beside init: that clone fails, and
        // one from outside the cgroups with a move afterwards doesn't)
        let forked = match forked {
            Err(e) if entered_v1 && left_v1.is_ok() => {
                crate::debug!("init is cloned outside its cgroups and moved in ({e})");
                born_in_cgroups = false;
                warren_sys::clone_namespaces(flags)
            }
            other => other,
        };
        let forked = match forked {
            Ok(f) => f,
            Err(e) => {
                let _ = std::env::set_current_dir("/");
                let _ = payload.remove();
                return Err(sys("clone the container's init")(e));
            }
        };
        let pid = match forked {
            warren_sys::Forked::Child => {
                drop(parent_sync);
                let setup = ChildSetup {
                    spec,
                    console: want_console,
                    ttys: want_ttys,
                    cgroup_layout: mount_layout(&self.hier),
                    minimal_init: self.opts.execute,
                    ifaces: &ifaces,
                };
                container::run(setup, child_sync)
            }
            warren_sys::Forked::Parent(pid) => pid,
        };
        // (only the monitor leaves the rootfs: the child starts there)
        let _ = std::env::set_current_dir("/");
        drop(child_sync);
        let mut parent_sync = parent_sync;
        let kill_child = || {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(nix::unistd::Pid::from_raw(pid), None);
        };
        let fail = |msg: String, payload: &ContainerCgroup| {
            kill_child();
            let _ = payload.kill_all();
            let _ = payload.remove();
            StartError::Setup(msg)
        };
        if let Err(e) = left_v1 {
            return Err(fail(
                format!("the monitor could not leave the container's cgroups: {e}"),
                &payload,
            ));
        }
        // before anything can reap it
        let pidfd = match warren_sys::pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                return Err(fail(format!("pidfd_open: {e}"), &payload));
            }
        };
        let mounts = spec
            .namespaces
            .new
            .contains(&NsKind::Mount)
            .then(|| std::fs::File::open(format!("/proc/{pid}/ns/mnt")).ok())
            .flatten();
        if !born_in_cgroups {
            if let Err(e) = inner.attach(pid) {
                return Err(fail(format!("move init into its cgroup: {e}"), &payload));
            }
        }
        let netns = crate::network::hold_netns(&ifaces, pid);
        // a failed start gives physical links back under their own names, and deletes the host
        // sides it made at once (the kernel would only get to them later)
        let give_back = |ifaces: &[crate::network::Iface]| {
            if let Some(ns) = &netns {
                crate::network::return_phys(ifaces, ns);
            }
            crate::network::remove_host_side(ifaces);
        };
        if let Err(msg) = crate::network::make_host_side(&mut ifaces, pid) {
            give_back(&ifaces);
            return Err(fail(msg, &payload));
        }
        for i in &ifaces {
            if let Some(script) = &i.script_up {
                if let Err(e) = hooks::run_net_script(spec, script, "up", i) {
                    give_back(&ifaces);
                    return Err(fail(
                        format!("lxc.net.{}.script.up: {e}", i.index),
                        &payload,
                    ));
                }
            }
        }
        let mut go_fds: Vec<OwnedFd> = Vec::new();
        if spec.namespaces.new.contains(&NsKind::User) {
            match userns_setup(spec, pid, &inner) {
                Ok(fd) => go_fds.extend(fd),
                Err(msg) => return Err(fail(msg, &payload)),
            }
            match idmapped_entry_sources(spec, pid, !go_fds.is_empty()) {
                Ok(fds) => go_fds.extend(fds),
                Err(msg) => {
                    give_back(&ifaces);
                    return Err(fail(msg, &payload));
                }
            }
        }
        if send_go(&parent_sync, &go_fds).is_err() {
            give_back(&ifaces);
            return Err(fail(read_child_error(&mut parent_sync, pid), &payload));
        }
        drop(go_fds);
        // Until EOF (exec done) the child may send "P" with its pty masters, "N" with the mount
        // guard's listener, or an error line. A message carrying descriptors arrives alone.
        let mut msg = Vec::new();
        let mut masters: Vec<OwnedFd> = Vec::new();
        let mut listener: Option<OwnedFd> = None;
        let mut buf = [0u8; 4096];
        loop {
            let mut fds = Vec::new();
            match warren_sys::recv_with_fds(parent_sync.as_fd(), &mut buf, &mut fds) {
                Ok(0) => break,
                Ok(n) if !fds.is_empty() && buf[0] == b'N' => {
                    listener = fds.pop();
                    msg.extend_from_slice(&buf[1..n]);
                }
                Ok(n) if !fds.is_empty() && buf[0] == b'P' => {
                    masters.extend(fds);
                    msg.extend_from_slice(&buf[1..n]);
                }
                Ok(n) => msg.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    msg = format!("talking to the container's first process: {e}").into_bytes();
                    break;
                }
            }
        }
        if spec.mount_guard && listener.is_none() && msg.is_empty() {
            msg = b"the container's first process did not hand over its mount guard".to_vec();
        }
        if !msg.is_empty() {
            let text = String::from_utf8_lossy(&msg).trim().to_string();
            give_back(&ifaces);
            return Err(fail(text, &payload));
        }
        let mut masters = masters.into_iter().map(|master| Pty {
            master,
            _slave: None,
        });
        let console = if want_console {
            masters.next().map(|mut c| {
                c._slave = warren_sys::open_pty_peer(c.master.as_fd()).ok();
                c
            })
        } else {
            None
        };
        let ttys: Vec<Pty> = masters.collect();
        if let Some(c) = &console {
            if let Ok(size) = warren_sys::get_window_size(warren_sys::std_fd(0)) {
                let _ = warren_sys::set_window_size(c.master.as_fd(), size);
            }
        }
        // EOF without a message: either exec succeeded, or the child died without a word (an
        // execute'd command may legitimately be done already: its status is collected later)
        if !self.opts.execute {
            match waitpid(
                nix::unistd::Pid::from_raw(pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            ) {
                Ok(WaitStatus::Exited(_, code)) => {
                    give_back(&ifaces);
                    return Err(fail(
                        format!("container init exited at once with status {code}"),
                        &payload,
                    ));
                }
                Ok(WaitStatus::Signaled(_, sig, _)) => {
                    give_back(&ifaces);
                    return Err(fail(
                        format!("container init was killed at once by {sig}"),
                        &payload,
                    ));
                }
                _ => {}
            }
        }
        let guard = listener.map(|l| crate::mountguard::Guard::new(l, inner.paths()));
        Ok(Instance {
            pid,
            pidfd,
            payload,
            inner,
            console,
            ttys,
            guard,
            ifaces,
            netns,
            mounts,
        })
    }

    /// The signal that asks init to halt: `lxc.signal.halt`, except that with LXC's default
    /// (SIGPWR) an init that catches SIGRTMIN+3 and not SIGPWR (systemd) gets SIGRTMIN+3, as LXC
    /// does.
    fn halt_signal(&self, inst: &Instance) -> i32 {
        let configured = self.spec.signals.halt;
        if configured != libc::SIGPWR {
            return configured;
        }
        let caught = std::fs::read_to_string(format!("/proc/{}/status", inst.pid))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("SigCgt:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .unwrap_or(0);
        let bit = |sig: i32| caught & (1u64 << (sig - 1)) != 0;
        let rtmin3 = libc::SIGRTMIN() + 3;
        if bit(rtmin3) && !bit(libc::SIGPWR) {
            rtmin3
        } else {
            configured
        }
    }

    /// The container's cgroups: the payload (limits, device policy) and the inner one init lives
    /// in. Nothing is left behind on failure.
    fn make_cgroups(&self) -> Result<(ContainerCgroup, ContainerCgroup), StartError> {
        let spec = &self.spec;
        let payload = self.hier.create_for(
            &spec.cgroup,
            &cgroup::payload_name(&spec.lxcpath, &spec.name),
        )?;
        crate::debug!("payload cgroup {} created", payload.name());
        let undo = |e: StartError| {
            let _ = payload.remove();
            e
        };
        self.device_policy(&payload)
            .map_err(|e| undo(StartError::Setup(e.to_string())))?;
        payload.apply(&spec.cgroup).map_err(|e| undo(e.into()))?;
        // init lives in an inner cgroup: the container's cgroup namespace is rooted there, so the
        // limits set on the payload cgroup are out of its reach (it sees, and may change, only
        // the copy on the inner one)
        let inner_spec = CgroupSpec {
            dir: Some(format!(
                "{}/{INNER_CGROUP}",
                spec.cgroup
                    .dir
                    .clone()
                    .unwrap_or_else(|| cgroup::payload_name(&spec.lxcpath, &spec.name))
            )),
            relative: spec.cgroup.relative,
            ..Default::default()
        };
        let inner = self
            .hier
            .create_for(&inner_spec, "")
            .map_err(|e| undo(StartError::Setup(format!("inner cgroup: {e}"))))?;
        // the copy of the limits, for the container to see; device rules need no copy (a new v1
        // devices cgroup starts with its parent's list, a cgroup2 program applies to descendants)
        let visible = CgroupSpec {
            v1: spec
                .cgroup
                .v1
                .iter()
                .filter(|(k, _)| !k.starts_with("devices."))
                .cloned()
                .collect(),
            v2: spec
                .cgroup
                .v2
                .iter()
                .filter(|(k, _)| !k.starts_with("devices."))
                .cloned()
                .collect(),
            ..Default::default()
        };
        inner.apply(&visible).map_err(|e| undo(e.into()))?;
        Ok((payload, inner))
    }

    /// Device rules the v1 devices controller can't enforce here go into a cgroup2 eBPF program
    /// on the payload cgroup (its descendants run it too, and the container can't reach it):
    /// `lxc.cgroup2.devices.*` always, `lxc.cgroup.devices.*` on hosts without the v1 controller.
    fn device_policy(&self, payload: &ContainerCgroup) -> Result<(), crate::devices::DeviceError> {
        let spec = &self.spec;
        if !nix::unistd::geteuid().is_root() {
            // a regular user can load no device program, and needs none: in its user
            // namespace the container can't make device nodes, and host ones bound in keep
            // their file permissions
            crate::debug!("device rules left to the user namespace (regular user)");
            return Ok(());
        }
        let mut rules = Vec::new();
        if self.hier.v1_for("devices").is_none() {
            rules.extend(crate::devices::rules_from(&spec.cgroup.v1, "lxc.cgroup.")?);
        }
        rules.extend(crate::devices::rules_from(&spec.cgroup.v2, "lxc.cgroup2.")?);
        if rules.is_empty() {
            return Ok(());
        }
        let Some(unified) = payload.unified_path() else {
            return Err(crate::devices::DeviceError::Load(
                "device rules need the v1 devices controller or a cgroup2 hierarchy; this host has neither".into(),
            ));
        };
        let mut current = self.device_program.borrow_mut();
        // a rule added to a running container: the old program out, the new one in, atomically
        let replace = current
            .as_ref()
            .filter(|_| self.state == State::Running)
            .map(|p| p.as_fd());
        let program = crate::devices::enforce(&rules, &unified, replace)?;
        *current = Some(program);
        crate::debug!("{} device rules enforced by an eBPF program", rules.len());
        Ok(())
    }

    /// `lxc-cgroup NAME KEY VALUE` on the running instance: written to the payload cgroup, in
    /// the hierarchy `v2` names (`None`: where the key's controller is). A device rule goes
    /// everywhere the container's device policy lives unless a hierarchy is named: the v1
    /// controller (the inner cgroup too, as a v1 child doesn't gain what its parent is allowed)
    /// and the cgroup2 device program, rebuilt with it (kept for a reboot).
    fn set_cgroup(
        &mut self,
        inst: &Instance,
        key: &str,
        v2: Option<bool>,
        value: &str,
    ) -> Result<(), String> {
        cgroup::check_key(key).map_err(|e| e.to_string())?;
        let entry = vec![(key.to_string(), value.to_string())];
        let v1_spec = CgroupSpec {
            v1: entry.clone(),
            ..Default::default()
        };
        if !key.starts_with("devices.") {
            let one = match v2.unwrap_or_else(|| inst.payload.key_is_v2(key)) {
                true => CgroupSpec {
                    v2: entry,
                    ..Default::default()
                },
                false => v1_spec,
            };
            inst.payload.apply(&one).map_err(|e| e.to_string())?;
            // the copy the container sees, as at start (best effort: what binds is the payload's)
            let _ = inst.inner.apply(&one);
            return Ok(());
        }
        let has_v1 = !inst.payload.key_is_v2(key);
        let to_v1 = v2 != Some(true) && has_v1;
        let to_program = match v2 {
            Some(v2) => v2,
            None => !has_v1 || self.device_program.borrow().is_some(),
        };
        if !to_v1 && !to_program {
            return Err(format!(
                "{key}: this host has no v1 devices controller; use lxc.cgroup2.{key}"
            ));
        }
        if to_program {
            crate::devices::parse_rule(
                &format!("lxc.cgroup2.{key}"),
                value,
                key == "devices.allow",
            )
            .map_err(|e| e.to_string())?;
            self.spec.cgroup.v2.extend(entry);
            if let Err(e) = self.device_policy(&inst.payload) {
                self.spec.cgroup.v2.pop();
                return Err(e.to_string());
            }
        }
        if to_v1 {
            inst.payload.apply(&v1_spec).map_err(|e| e.to_string())?;
            inst.inner.apply(&v1_spec).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Serve the command socket and the console until init exits. Returns (exit code, reboot?).
    fn serve(&mut self, inst: &Instance) -> (i32, bool) {
        let fg_stdin = self.opts.foreground && inst.console.is_some();
        // -F: the user's terminal is the console's; keys (Ctrl-C too) go to the container
        let _raw = (fg_stdin && nix::unistd::isatty(warren_sys::std_fd(0)).unwrap_or(false))
            .then(crate::term::RawMode::enter);
        let mut guard_live = true;
        // the code pages are let go once the monitor has been idle a while (they stay in the
        // page cache; what runs next faults back in what it needs): an idle monitor then
        // holds little more than its data
        let mut code_released = self.opts.foreground;
        loop {
            self.reap_cgroup_joiner(false);
            if let Some((at, tracking)) = self.join_cgroup_at.take() {
                if Instant::now() >= at {
                    self.join_own_cgroup(&tracking);
                } else {
                    self.join_cgroup_at = Some((at, tracking));
                }
            }
            let until = |d: Instant| {
                let left = d.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left.as_millis().min(60_000) as i32 + 1)
                    .unwrap_or(PollTimeout::MAX)
            };
            let timeout = match (self.stop_deadline, &self.join_cgroup_at) {
                (Some(d), _) => until(d),
                (None, Some((at, _))) => until(*at),
                (None, None) if !code_released => PollTimeout::from(IDLE_BEFORE_RELEASE_MS),
                (None, None) => PollTimeout::NONE,
            };
            let mut fds: Vec<PollFd> = Vec::new();
            fds.push(PollFd::new(inst.pidfd.as_fd(), PollFlags::POLLIN));
            fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
            let console_idx = fds.len();
            if let Some(c) = &inst.console {
                fds.push(PollFd::new(c.master.as_fd(), PollFlags::POLLIN));
            }
            let peer_idx = fds.len();
            let watch_peer = self.console_peer_readable && inst.console.is_some();
            if let (Some(p), true) = (&self.console_peer, watch_peer) {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
            let stdin_idx = fds.len();
            let stdin_fd: BorrowedFd<'_> = warren_sys::std_fd(0);
            if fg_stdin && self.stdin_open {
                fds.push(PollFd::new(stdin_fd, PollFlags::POLLIN));
            }
            let clients_idx = fds.len();
            for c in &self.console_clients {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
            }
            let ttys_idx = fds.len();
            for (_, c) in &self.tty_clients {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
            }
            let guard_idx = fds.len();
            if let Some(g) = inst.guard.as_ref().filter(|_| guard_live) {
                fds.push(PollFd::new(g.fd(), PollFlags::POLLIN));
            }
            let attach_guards_idx = fds.len();
            for g in &self.attach_guards {
                fds.push(PollFd::new(g.fd(), PollFlags::POLLIN));
            }
            // clients waiting for a state: watched so that one that goes away (lxc-wait given
            // up with Ctrl-C) is dropped, not kept until the state comes
            let waiters_idx = fds.len();
            for (w, _) in &self.state_waiters {
                fds.push(PollFd::new(w.as_fd(), PollFlags::POLLIN));
            }
            let n = match poll(&mut fds, timeout) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => 0,
            };
            if n == 0
                && !code_released
                && self.stop_deadline.is_none()
                && self.join_cgroup_at.is_none()
            {
                code_released = true;
                if let Ok(b) = warren_sys::release_own_code_pages() {
                    crate::debug!("idle: released {} KiB of code pages", b / 1024);
                }
                continue;
            }
            if n > 0 {
                code_released = self.opts.foreground;
            }
            let ready = |i: usize| {
                fds.get(i)
                    .and_then(|f| f.revents())
                    .map(|r| !r.is_empty())
                    .unwrap_or(false)
            };
            let init_exited = ready(0);
            let new_conn = ready(1);
            let console_ready = inst.console.is_some() && ready(console_idx);
            let stdin_ready = fg_stdin && self.stdin_open && ready(stdin_idx);
            let peer_ready = watch_peer && self.console_peer.is_some() && ready(peer_idx);
            let clients_ready: Vec<usize> = (0..self.console_clients.len())
                .filter(|i| ready(clients_idx + i))
                .collect();
            let ttys_ready: Vec<usize> = (0..self.tty_clients.len())
                .filter(|i| ready(ttys_idx + i))
                .collect();
            let guard_events = if inst.guard.is_some() && guard_live {
                fds.get(guard_idx).and_then(|f| f.revents())
            } else {
                None
            };
            let guard_ready = guard_events.is_some_and(|r| r.contains(PollFlags::POLLIN));
            // every process under init's filter is gone (the container is dying): the listener
            // stays "hung up", and polling it again would only spin
            if guard_events.is_some_and(|r| {
                !r.contains(PollFlags::POLLIN)
                    && r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)
            }) {
                guard_live = false;
            }
            let gone_waiters: Vec<usize> = (0..self.state_waiters.len())
                .filter(|i| ready(waiters_idx + i))
                .collect();
            // (index, has a call, all its processes gone)
            let attach_guard_events: Vec<(usize, bool, bool)> = (0..self.attach_guards.len())
                .filter_map(|i| {
                    let r = fds.get(attach_guards_idx + i).and_then(|f| f.revents())?;
                    (!r.is_empty()).then(|| {
                        (
                            i,
                            r.contains(PollFlags::POLLIN),
                            r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR),
                        )
                    })
                })
                .collect();
            drop(fds);
            let _ = n;
            // checked on every turn: a busy console must not keep the kill from happening
            if let Some(d) = self.stop_deadline {
                if Instant::now() >= d {
                    crate::info!("clean stop timed out, killing {}", self.spec.name);
                    let _ = warren_sys::pidfd_send_signal(inst.pidfd.as_fd(), libc::SIGKILL);
                    self.stop_deadline = None;
                }
            }
            if TERMINATE.swap(false, std::sync::atomic::Ordering::SeqCst)
                && self.state != State::Stopping
            {
                // SIGTERM/SIGINT to the monitor: a clean stop, as `lxc-stop` would do
                crate::info!("monitor asked to terminate: stopping {}", self.spec.name);
                self.set_state(State::Stopping);
                let _ = warren_sys::pidfd_send_signal(inst.pidfd.as_fd(), self.halt_signal(inst));
                self.stop_deadline = Some(Instant::now() + Duration::from_secs(30));
            }
            if stdin_ready {
                let mut buf = [0u8; 4096];
                match nix::unistd::read(stdin_fd, &mut buf) {
                    Ok(0) | Err(_) => self.stdin_open = false,
                    Ok(n) => {
                        if let Some(c) = &inst.console {
                            let _ = write_all_fd(c.master.as_fd(), &buf[..n]);
                        }
                    }
                }
            }
            if peer_ready {
                let mut buf = [0u8; 4096];
                let read = self
                    .console_peer
                    .as_ref()
                    .map(|p| nix::unistd::read(p.as_fd(), &mut buf));
                match read {
                    Some(Ok(n)) if n > 0 => {
                        if let Some(c) = &inst.console {
                            let _ = write_all_fd(c.master.as_fd(), &buf[..n]);
                        }
                    }
                    Some(Err(nix::errno::Errno::EAGAIN)) => {}
                    // a hangup (nobody on the terminal's other side): stop watching it, keep
                    // writing what the container says
                    _ => {
                        crate::debug!("the console's host terminal hung up");
                        self.console_peer_readable = false;
                    }
                }
            }
            for i in clients_ready.into_iter().rev() {
                let mut buf = [0u8; 4096];
                let gone = match self.console_clients[i].read(&mut buf) {
                    Ok(0) | Err(_) => true,
                    Ok(n) => {
                        if let Some(c) = &inst.console {
                            let _ = write_all_fd(c.master.as_fd(), &buf[..n]);
                        }
                        false
                    }
                };
                if gone {
                    self.console_clients.remove(i);
                }
            }
            for i in ttys_ready.into_iter().rev() {
                // the client has the master itself; any event here means it hung up
                self.tty_clients.remove(i);
            }
            // after the index-based loops above: pump_console may drop dead clients
            if console_ready {
                self.pump_console(inst);
            }
            if guard_ready {
                if let Some(g) = &inst.guard {
                    g.handle_one();
                }
            }
            for i in gone_waiters.into_iter().rev() {
                // a waiter sends nothing after its request: readable means it hung up (or
                // broke the protocol, which would keep it readable for ever)
                let mut b = [0u8; 1];
                let hung_up = !matches!(
                    nix::sys::socket::recv(
                        self.state_waiters[i].0.as_raw_fd(),
                        &mut b,
                        nix::sys::socket::MsgFlags::MSG_DONTWAIT
                            | nix::sys::socket::MsgFlags::MSG_PEEK,
                    ),
                    Err(nix::errno::Errno::EAGAIN)
                );
                if hung_up {
                    self.state_waiters.remove(i);
                }
            }
            for (i, call, gone) in attach_guard_events.into_iter().rev() {
                if call {
                    self.attach_guards[i].handle_one();
                } else if gone {
                    self.attach_guards.remove(i);
                }
            }
            if new_conn {
                self.accept_all(inst);
            }
            if init_exited {
                // drain what init's last words left on the console
                if inst.console.is_some() {
                    self.pump_console(inst);
                }
                let status = waitpid(nix::unistd::Pid::from_raw(inst.pid), None);
                let (code, by_hup) = match status {
                    Ok(WaitStatus::Exited(_, c)) => (c, false),
                    Ok(WaitStatus::Signaled(_, s, _)) => (128 + s as i32, s == Signal::SIGHUP),
                    _ => (255, false),
                };
                crate::info!("init of {} exited with status {code}", self.spec.name);
                // a reboot(2) in a pid namespace kills its init with SIGHUP
                let rebooting = (by_hup || self.reboot_requested)
                    && !self.opts.execute
                    && self.stop_waiters.is_empty();
                return (code, rebooting);
            }
        }
    }

    fn pump_console(&mut self, inst: &Instance) {
        let Some(c) = &inst.console else { return };
        let mut buf = [0u8; 8192];
        // non-blocking read loop: the master is readable; read what is there now
        loop {
            let mut pfd = [PollFd::new(c.master.as_fd(), PollFlags::POLLIN)];
            match poll(&mut pfd, PollTimeout::ZERO) {
                Ok(1) => {}
                _ => break,
            }
            let readable = pfd[0]
                .revents()
                .map(|r| r.contains(PollFlags::POLLIN))
                .unwrap_or(false);
            if !readable {
                break;
            }
            let n = match nix::unistd::read(c.master.as_fd(), &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let data = &buf[..n];
            self.ring.push(data);
            self.write_console_log(data);
            if self.opts.foreground {
                let _ = write_all_fd(warren_sys::std_fd(1), data);
            }
            self.console_clients
                .retain_mut(|cl| cl.write_all(data).is_ok());
            if let Some(p) = &self.console_peer {
                // non-blocking: a terminal nobody reads loses output rather than stalling the
                // monitor
                let _ = nix::unistd::write(p.as_fd(), data);
            }
        }
    }

    /// Append to `lxc.console.logfile`, keeping it under `lxc.console.size`: with
    /// `lxc.console.rotate` the full file becomes `<file>.1`, otherwise it starts over.
    fn write_console_log(&mut self, mut data: &[u8]) {
        let limit = self.spec.console.log_size;
        let rotate = self.spec.console.log_rotate;
        let path = self.spec.console.logfile.clone();
        let Some(f) = self.logfile.as_mut() else {
            return;
        };
        if limit == 0 {
            let _ = f.write_all(data);
            return;
        }
        while !data.is_empty() {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let room = limit.saturating_sub(len);
            if room == 0 {
                if let (true, Some(path)) = (rotate, &path) {
                    let mut rotated = path.clone().into_os_string();
                    rotated.push(".1");
                    let _ = std::fs::rename(path, &rotated);
                    match OpenOptions::new().create(true).append(true).open(path) {
                        Ok(new) => *f = new,
                        Err(_) => return,
                    }
                }
                // no rotation, or one that couldn't rename: start the file over
                let still_full = f.metadata().map(|m| m.len() >= limit).unwrap_or(true);
                if still_full && f.set_len(0).is_err() {
                    return;
                }
                continue;
            }
            let n = (room as usize).min(data.len());
            if f.write_all(&data[..n]).is_err() {
                return;
            }
            data = &data[n..];
        }
    }

    fn accept_all(&mut self, inst: &Instance) {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(_) => return,
            };
            let _ = stream.set_nonblocking(false);
            // a request is one short line, sent at once: a peer that dribbles it gets cut off
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
            self.handle(inst, stream);
        }
    }

    fn init_info(&self, inst: &Instance) -> InitInfo {
        InitInfo {
            pid: inst.pid,
            state: Some(self.state),
            namespaces: self.spec.namespaces.new.clone(),
            cgroup_paths: inst.inner.paths(),
            cgroup_name: cgroup::payload_name(&self.spec.lxcpath, &self.spec.name),
            environment: self.spec.environment.clone(),
            ttys: self.spec.tty_max,
            monitor_pid: std::process::id() as i32,
            unprivileged: !self.spec.idmaps.is_empty(),
            cap_drop: self.spec.cap_drop.clone(),
            cap_keep: self.spec.cap_keep.clone(),
            no_new_privs: self.spec.no_new_privs,
            seccomp_profile: self.spec.seccomp_profile.clone(),
            seccomp_bpf: self.spec.seccomp_bpf.clone(),
            mount_guard: self.spec.mount_guard,
            host_links: inst
                .ifaces
                .iter()
                .filter_map(|i| match &i.kind {
                    crate::network::IfaceKind::Veth { host, .. } => Some(host.clone()),
                    _ => None,
                })
                .collect(),
        }
    }

    fn handle(&mut self, inst: &Instance, stream: UnixStream) {
        // an abstract socket has no file permissions: anyone in the network namespace can
        // connect, so the peer's credentials decide (root, or the user who owns the monitor),
        // before anything is read
        if let Err(msg) = peer_allowed(&stream) {
            crate::warn!("refused a connection: {msg}");
            let _ = proto::write_response(&stream, &Response::error(msg), &[]);
            // let a client that is still sending finish (briefly), so it reads the refusal
            // instead of a broken pipe
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
            let mut sink = [0u8; 4096];
            let _ = (&stream).read(&mut sink);
            return;
        }
        let req: Request =
            match proto::read_line_deadline(&stream, Instant::now() + Duration::from_millis(500))
                .map_err(|e| e.to_string())
                .and_then(|line| serde_json::from_slice(&line).map_err(|e| e.to_string()))
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = proto::write_response(
                        &stream,
                        &Response::error(format!("bad request: {e}")),
                        &[],
                    );
                    return;
                }
            };
        crate::debug!("command {req:?}");
        let _ = stream.set_read_timeout(None);
        // console clients keep the write timeout: one that stops reading is dropped, not waited for
        let mut resp = Response::ok();
        resp.state = Some(self.state);
        match req {
            Request::Info => {
                resp.info = Some(self.init_info(inst));
                let _ = proto::write_response(&stream, &resp, &[]);
            }
            Request::AdoptGuard { pid, fd } => {
                if !self.spec.mount_guard {
                    resp = Response::error("this container's mounts are not supervised");
                } else if self.attach_guards.len() >= 256 {
                    // each one is a descriptor and a poll entry of ours
                    resp = Response::error(
                        "mount guard: 256 attached processes are supervised already",
                    );
                } else {
                    match crate::mountguard::Guard::adopt(pid, fd, inst.pid, inst.inner.paths()) {
                        Ok(g) => self.attach_guards.push(g),
                        Err(e) => resp = Response::error(format!("mount guard: {e}")),
                    }
                }
                let _ = proto::write_response(&stream, &resp, &[]);
            }
            Request::InitPidfd => {
                resp.info = Some(self.init_info(inst));
                let _ = proto::write_response(&stream, &resp, &[inst.pidfd.as_raw_fd()]);
            }
            Request::Stop { timeout, kill } => {
                self.reboot_requested = false;
                if self.state == State::Frozen {
                    let _ = inst.payload.thaw();
                }
                self.set_state(State::Stopping);
                let sig = if kill {
                    libc::SIGKILL
                } else {
                    self.halt_signal(inst)
                };
                if let Err(e) = warren_sys::pidfd_send_signal(inst.pidfd.as_fd(), sig) {
                    let _ = proto::write_response(
                        &stream,
                        &Response::error(format!("signal init: {e}")),
                        &[],
                    );
                    return;
                }
                if !kill && timeout >= 0 {
                    self.stop_deadline = Some(Instant::now() + Duration::from_secs(timeout as u64));
                }
                if proto::write_response(&stream, &resp, &[]).is_ok() {
                    self.stop_waiters.push(stream);
                }
            }
            Request::Reboot => {
                self.reboot_requested = true;
                if let Err(e) =
                    warren_sys::pidfd_send_signal(inst.pidfd.as_fd(), self.spec.signals.reboot)
                {
                    resp = Response::error(format!("signal init: {e}"));
                }
                let _ = proto::write_response(&stream, &resp, &[]);
            }
            Request::Freeze if self.state != State::Running => {
                let msg = format!(
                    "{} is {}: only a running container can be frozen",
                    self.spec.name, self.state
                );
                let _ = proto::write_response(&stream, &Response::error(msg), &[]);
            }
            Request::Freeze => {
                self.set_state(State::Freezing);
                match inst.payload.freeze() {
                    Ok(()) => self.set_state(State::Frozen),
                    Err(e) => {
                        self.set_state(State::Running);
                        resp = Response::error(e.to_string());
                    }
                }
                resp.state = Some(self.state);
                let _ = proto::write_response(&stream, &resp, &[]);
            }
            Request::Unfreeze => {
                match inst.payload.thaw() {
                    Ok(()) => {
                        self.set_state(State::Thawed);
                        self.set_state(State::Running);
                    }
                    Err(e) => resp = Response::error(e.to_string()),
                }
                resp.state = Some(self.state);
                let _ = proto::write_response(&stream, &resp, &[]);
            }
            Request::Console { tty, rows, cols } => {
                let size = warren_sys::WindowSize { rows, cols };
                if tty == 0 {
                    let Some(c) = &inst.console else {
                        let _ = proto::write_response(
                            &stream,
                            &Response::error(
                                "the container has no console (lxc.console.path = none)",
                            ),
                            &[],
                        );
                        return;
                    };
                    if rows > 0 {
                        let _ = warren_sys::set_window_size(c.master.as_fd(), size);
                    }
                    if proto::write_response(&stream, &resp, &[]).is_ok() {
                        self.console_clients.push(stream);
                    }
                    return;
                }
                let idx = tty as usize - 1;
                let Some(t) = inst.ttys.get(idx) else {
                    let msg = format!(
                        "tty {tty} does not exist (lxc.tty.max = {})",
                        self.spec.tty_max
                    );
                    let _ = proto::write_response(&stream, &Response::error(msg), &[]);
                    return;
                };
                if self.tty_clients.iter().any(|(i, _)| *i == idx) {
                    let _ = proto::write_response(
                        &stream,
                        &Response::error(format!("tty {tty} is busy")),
                        &[],
                    );
                    return;
                }
                if rows > 0 {
                    let _ = warren_sys::set_window_size(t.master.as_fd(), size);
                }
                if proto::write_response(&stream, &resp, &[t.master.as_raw_fd()]).is_ok() {
                    self.tty_clients.push((idx, stream));
                }
            }
            Request::Cgroup { key, value } => {
                // `lxc.cgroup2.KEY` / `lxc.cgroup.KEY` name the hierarchy; a bare key goes where
                // its controller is
                let (key, v2) = if let Some(k) = key.strip_prefix("lxc.cgroup2.") {
                    (k, Some(true))
                } else if let Some(k) = key.strip_prefix("lxc.cgroup.") {
                    (k, Some(false))
                } else {
                    (key.as_str(), None)
                };
                let result = match value {
                    None => inst
                        .payload
                        .read_setting(key, v2.unwrap_or_else(|| inst.payload.key_is_v2(key)))
                        .map(Some)
                        .map_err(|e| e.to_string()),
                    Some(v) => self.set_cgroup(inst, key, v2, &v).map(|()| None),
                };
                match result {
                    Ok(data) => {
                        resp.data = data;
                        let _ = proto::write_response(&stream, &resp, &[]);
                    }
                    Err(e) => {
                        let _ = proto::write_response(&stream, &Response::error(e), &[]);
                    }
                }
            }
            Request::ConsoleLog { clear } => {
                let (a, b) = self.ring.buf.as_slices();
                let mut data = a.to_vec();
                data.extend_from_slice(b);
                resp.data = Some(String::from_utf8_lossy(&data).into_owned());
                if clear {
                    self.ring.buf.clear();
                }
                let _ = proto::write_response(&stream, &resp, &[]);
            }
            Request::Wait { states } => {
                if states.contains(&self.state) {
                    let _ = proto::write_response(&stream, &resp, &[]);
                } else {
                    self.state_waiters.push((stream, states));
                }
            }
        }
    }

    fn set_state(&mut self, state: State) {
        if self.state == state {
            return;
        }
        crate::debug!("state {} -> {}", self.state, state);
        self.state = state;
        let mut keep = Vec::new();
        for (stream, states) in self.state_waiters.drain(..) {
            if states.contains(&state) {
                let mut resp = Response::ok();
                resp.state = Some(state);
                let _ = proto::write_response(&stream, &resp, &[]);
            } else {
                keep.push((stream, states));
            }
        }
        self.state_waiters = keep;
    }

    /// Everything an instance made goes: processes, cgroup, ptys. Stop hooks run here.
    fn teardown(&mut self, inst: Instance, aborted: bool) {
        self.set_state(if aborted {
            State::Aborting
        } else {
            State::Stopping
        });
        if aborted {
            let _ = warren_sys::pidfd_send_signal(inst.pidfd.as_fd(), libc::SIGKILL);
            let _ = waitpid(nix::unistd::Pid::from_raw(inst.pid), None);
        }
        let target = if self.reboot_requested {
            "reboot"
        } else {
            "stop"
        };
        let env = hooks::hook_env(&self.spec, Some(target));
        if let Err(e) = hooks::run_all(&self.spec, HookKind::Stop, &env) {
            crate::error!("{e}");
        }
        // Usually init took every process with it, and each directory goes in one rmdir (the
        // inner ones first: then the payload's are leaves). A directory that stays (a process
        // left, cgroups the container made) sends the whole cgroup the slow way: every process
        // killed, then the trees removed.
        let gone = inst.inner.remove_if_empty() && inst.payload.remove_if_empty();
        if !gone {
            if let Err(e) = inst.payload.kill_all() {
                crate::error!("kill leftover processes: {e}");
            }
            // (what can't go now is reported by the payload's removal, which looks deeper)
            let _ = inst.inner.remove();
            if let Err(e) = inst.payload.remove() {
                crate::error!("remove cgroup: {e}");
            }
        }
        if let Some(ns) = &inst.netns {
            crate::network::return_phys(&inst.ifaces, ns);
        }
        for i in &inst.ifaces {
            if let Some(script) = &i.script_down {
                if let Err(e) = hooks::run_net_script(&self.spec, script, "down", i) {
                    crate::error!("lxc.net.{}.script.down: {e}", i.index);
                }
            }
        }
        crate::network::remove_host_side(&inst.ifaces);
        self.tty_clients.clear();
        self.attach_guards.clear();
        if !self.reboot_requested {
            self.console_clients.clear();
            self.stopped_mounts = inst.mounts;
        }
    }
}

fn read_child_error(sync: &mut UnixStream, pid: i32) -> String {
    let mut msg = String::new();
    let _ = sync.read_to_string(&mut msg);
    if msg.trim().is_empty() {
        format!("container process {pid} died during setup")
    } else {
        msg.trim().to_string()
    }
}

fn write_all_fd(fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Move the monitor back where it started (the root cgroups, or a regular user's delegated
/// ones), so its own cgroup can be removed.
fn leave_to_root(hier: &Hierarchies) {
    let me = std::process::id().to_string();
    for dir in hier.home_paths() {
        let _ = std::fs::write(dir.join("cgroup.procs"), &me);
    }
}

/// The hierarchies as the container mounts them under /sys/fs/cgroup: (dir, options, is_cgroup2).
/// A lone cgroup2 (pure cgroup2 host) is one entry with an empty dir: mounted on /sys/fs/cgroup.
fn mount_layout(hier: &Hierarchies) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for h in hier.v1() {
        let dir = h
            .mountpoint
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut opts = h.controllers.clone();
        if let Some(n) = &h.name {
            opts.push(format!("name={n}"));
        }
        out.push((dir, opts.join(","), false));
    }
    if let Some(u) = hier.unified() {
        let dir = if hier.v1().is_empty() {
            String::new()
        } else {
            u.mountpoint
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "unified".to_string())
        };
        out.push((dir, String::new(), true));
    }
    out
}

/// Whether the peer of a command connection may control this container: root, or the monitor's
/// own user.
fn peer_allowed(stream: &UnixStream) -> Result<(), String> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let cred = getsockopt(stream, PeerCredentials).map_err(|e| format!("peer credentials: {e}"))?;
    let me = nix::unistd::geteuid().as_raw();
    if cred.uid() == 0 || cred.uid() == me {
        Ok(())
    } else {
        Err(format!(
            "permission denied: uid {} may not control this container (only root or uid {me})",
            cred.uid()
        ))
    }
}

/// For each `idmap=container` bind entry, in order: a detached copy of its source mapped through
/// the container's user namespace. `can_idmap`: this monitor made the rootfs's idmapped mount
/// (a regular user's can't make any).
fn idmapped_entry_sources(
    spec: &ContainerSpec,
    pid: i32,
    can_idmap: bool,
) -> Result<Vec<OwnedFd>, String> {
    let entries: Vec<&crate::spec::MountEntry> = spec
        .mounts
        .iter()
        .filter(|e| crate::mounts::parse_options(&e.options).idmap)
        .collect();
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    if !can_idmap {
        return Err(
            "lxc.mount.entry with idmap=container: idmapped mounts need the container started by root".into(),
        );
    }
    let userns = std::fs::File::open(format!("/proc/{pid}/ns/user"))
        .map_err(|e| format!("open the container's user namespace: {e}"))?;
    let mut out = Vec::new();
    for e in entries {
        let opts = crate::mounts::parse_options(&e.options);
        if !opts.flags.contains(nix::mount::MsFlags::MS_BIND) || opts.relative {
            return Err(format!(
                "lxc.mount.entry {} {}: idmap=container needs a bind mount of a host path",
                e.source,
                e.target.display()
            ));
        }
        // (`nofollow`: the source opened without following symlinks, then its mount cloned)
        let pinned = if opts.nofollow {
            Some(
                crate::mounts::open_source_nofollow(&e.source).map_err(|why| {
                    format!("lxc.mount.entry {} {}: {why}", e.source, e.target.display())
                })?,
            )
        } else {
            None
        };
        let source = match &pinned {
            Some(fd) => std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            None => std::path::PathBuf::from(&e.source),
        };
        let tree = warren_sys::open_tree_clone(&source)
            .map_err(|err| format!("clone the mount of {}: {err}", e.source))?;
        warren_sys::idmap_mount(tree.as_fd(), userns.as_fd())
            .map_err(|err| format!("idmapped mount of {}: {err}", e.source))?;
        out.push(tree);
    }
    Ok(out)
}

/// Send the child its "go" byte, with descriptors (the idmapped rootfs) when there are any.
fn send_go(sync: &UnixStream, fds: &[OwnedFd]) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let iov = [io::IoSlice::new(b"g")];
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &cmsg };
    sendmsg::<()>(sync.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)
        .map_err(io::Error::from)?;
    Ok(())
}

/// The host id that container id 0 maps to (the container's root), for uids or gids.
fn host_root(spec: &ContainerSpec, uid: bool) -> Option<u32> {
    host_id(spec, uid, 0)
}

fn host_id(spec: &ContainerSpec, uid: bool, id: u32) -> Option<u32> {
    spec.idmaps
        .iter()
        .filter(|m| m.is_uid == uid)
        .find(|m| id >= m.container_id && id - m.container_id < m.count)
        .map(|m| m.host_id + (id - m.container_id))
}

/// For a container with a user namespace: write its id maps (as root, warren writes them itself:
/// no /etc/subuid entry needed), hand its root its cgroup, and make the idmapped copy
/// of the rootfs mount that the child attaches in place of a bind. Returns that mount.
///
/// A regular user's monitor goes through newuidmap/newgidmap (the front end checked that
/// /etc/subuid and /etc/subgid allow the maps) and returns no mount: the rootfs was made with the
/// mapped ids, and the child binds it itself.
fn userns_setup(
    spec: &ContainerSpec,
    pid: i32,
    inner: &ContainerCgroup,
) -> Result<Option<OwnedFd>, String> {
    if !nix::unistd::geteuid().is_root() {
        crate::userns::write_maps_with_helpers(pid, &spec.idmaps).map_err(|e| e.to_string())?;
        // the container's root gets its cgroup (systemd makes its tree there), as a root-started
        // container's does; done as root of a namespace with the container's maps and the
        // user's own ids, the user's group keeping the right to move processes in (attach)
        let dirs = inner.paths();
        let maps = crate::userns::with_own_ids(&spec.idmaps);
        let user_gid_inside = maps
            .iter()
            .find(|m| !m.is_uid && m.count == 1 && m.host_id == nix::unistd::getgid().as_raw())
            .map(|m| m.container_id);
        let handed = crate::userns::run_as_mapped_root(&maps, move || {
            use std::os::unix::fs::PermissionsExt;
            for dir in &dirs {
                std::os::unix::fs::chown(dir, Some(0), Some(0))
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                for f in ["cgroup.procs", "cgroup.threads", "cgroup.subtree_control"] {
                    let p = dir.join(f);
                    if p.exists() {
                        std::os::unix::fs::chown(&p, Some(0), user_gid_inside.or(Some(0)))
                            .map_err(|e| format!("{}: {e}", p.display()))?;
                        let _ =
                            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o664));
                    }
                }
            }
            Ok(Vec::new())
        });
        if let Err(e) = handed {
            crate::warn!("the container's root can't manage its cgroup: {e}");
        }
        return Ok(None);
    }
    for (file, uid) in [("uid_map", true), ("gid_map", false)] {
        let text: String = spec
            .idmaps
            .iter()
            .filter(|m| m.is_uid == uid)
            .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.count))
            .collect();
        if text.is_empty() {
            return Err(format!(
                "lxc.idmap has no {} line: an unprivileged container needs both u and g maps",
                if uid { "u" } else { "g" }
            ));
        }
        // the kernel takes the whole map in one write
        std::fs::write(format!("/proc/{pid}/{file}"), &text).map_err(|e| {
            format!(
                "write /proc/{pid}/{file} ({}): {e}",
                text.trim().replace('\n', ", ")
            )
        })?;
    }
    let (Some(root_uid), Some(root_gid)) = (host_root(spec, true), host_root(spec, false)) else {
        return Err("lxc.idmap does not map the container's root (id 0)".into());
    };
    // the container's root manages its own cgroup (systemd creates its tree there)
    for dir in inner.paths() {
        let _ = std::os::unix::fs::chown(&dir, Some(root_uid), Some(root_gid));
        for f in [
            "cgroup.procs",
            "cgroup.threads",
            "cgroup.subtree_control",
            "tasks",
            "cgroup.clone_children",
            "notify_on_release",
        ] {
            let p = dir.join(f);
            if p.exists() {
                let _ = std::os::unix::fs::chown(&p, Some(root_uid), Some(root_gid));
            }
        }
    }
    let userns = std::fs::File::open(format!("/proc/{pid}/ns/user"))
        .map_err(|e| format!("open the container's user namespace: {e}"))?;
    let tree = warren_sys::open_tree_clone(&spec.rootfs.path)
        .map_err(|e| format!("clone the rootfs mount {}: {e}", spec.rootfs.path.display()))?;
    if spec.rootfs.shifted {
        // its files already carry the mapped ids
        warren_sys::make_mount_private(tree.as_fd())
            .map_err(|e| format!("rootfs mount {}: {e}", spec.rootfs.path.display()))?;
        return Ok(Some(tree));
    }
    warren_sys::idmap_mount(tree.as_fd(), userns.as_fd()).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => {
                " (this filesystem or kernel has no idmapped mounts: shift the rootfs's ownership once with `warren-lxc shift -n NAME`)"
            }
            _ => "",
        };
        format!("idmapped mount of the rootfs {}: {e}{hint}", spec.rootfs.path.display())
    })?;
    Ok(Some(tree))
}
