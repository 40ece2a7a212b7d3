//! The container spec: the one plain data type every front end (LXC configs, the daemon, the builder)
//! turns into, and from which the runtime makes a container.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Everything the runtime needs to start one container. Front ends fill it; the runtime never reads
/// config files.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerSpec {
    /// Container name (unique per lxcpath).
    pub name: String,
    /// Directory holding the container directories (LXC's lxcpath).
    pub lxcpath: PathBuf,
    /// The config file the spec came from, for hooks (`LXC_CONFIG_FILE`).
    pub config_file: Option<PathBuf>,
    pub rootfs: RootfsSpec,
    /// `lxc.uts.name`; `None` keeps the name the new UTS namespace inherits.
    pub hostname: Option<String>,
    pub namespaces: NamespaceSpec,
    pub init: InitSpec,
    /// `lxc.autodev`: a tmpfs /dev populated with the standard nodes.
    pub autodev: bool,
    pub mount_auto: MountAuto,
    /// `lxc.mount.entry` and the lines of `lxc.mount.fstab`, in config order.
    pub mounts: Vec<MountEntry>,
    pub console: ConsoleSpec,
    /// `lxc.tty.max`: ttys /dev/tty1..N backed by ptys the monitor holds.
    pub tty_max: u32,
    /// `lxc.pty.max`: max ptys of the container's devpts instance (0 = unlimited).
    pub pty_max: u32,
    /// `lxc.tty.dir`: the console and ttys live in /dev/<dir>/, with /dev/console and /dev/ttyN
    /// symlinks to them.
    #[serde(default)]
    pub tty_dir: Option<String>,
    pub cgroup: CgroupSpec,
    pub signals: SignalSpec,
    pub hooks: Vec<HookSpec>,
    /// `lxc.hook.version`: 0 passes name/section/type as arguments, 1 only as environment.
    pub hook_version: u32,
    pub nets: Vec<NetSpec>,
    /// `lxc.idmap` entries (user namespace maps). Empty: privileged container.
    pub idmaps: Vec<IdMap>,
    /// `lxc.ephemeral`: destroy the container directory when it stops.
    pub ephemeral: bool,
    /// `lxc.environment`: extra variables for init (and for attach).
    pub environment: Vec<(String, String)>,
    /// `lxc.sysctl.*` key/value pairs, applied inside the container's namespaces.
    pub sysctls: Vec<(String, String)>,
    /// `lxc.prlimit.*`: resource, soft, hard (`None` = unlimited).
    pub prlimits: Vec<Prlimit>,
    /// `lxc.proc.*`: /proc/PID/<key> writes for init.
    pub proc_writes: Vec<(String, String)>,
    /// `lxc.cap.drop` names (lower case, without `cap_`).
    pub cap_drop: Vec<String>,
    /// `lxc.cap.keep` names; when non-empty everything else is dropped.
    pub cap_keep: Vec<String>,
    /// `lxc.no_new_privs`.
    pub no_new_privs: bool,
    /// `lxc.seccomp.profile`: a file in LXC's seccomp policy format.
    pub seccomp_profile: Option<PathBuf>,
    /// That profile compiled to a classic-BPF program (`runtime::seccomp::compile`), filled by the
    /// front end before start: the runtime installs this, never the file.
    #[serde(default)]
    pub seccomp_bpf: Option<Vec<u8>>,
    /// Supervise the mount calls of a privileged container (`mountguard`): on unless the
    /// container has a user namespace (the kernel guards those) or `lxc.apparmor.profile =
    /// unconfined` asks for no confinement at all.
    #[serde(default)]
    pub mount_guard: bool,
    /// Keys that were accepted but are not enforced by this version, to warn about once at start.
    pub unenforced: Vec<String>,
}

/// Where the rootfs is and how it is presented.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RootfsSpec {
    /// The rootfs directory on the host (`dir:` prefix removed).
    pub path: PathBuf,
    /// `lxc.rootfs.mount`: where it is mounted before pivot_root (informational for hooks).
    pub mount: Option<PathBuf>,
    /// `lxc.rootfs.options`, comma-separated mount options for the rootfs bind.
    pub options: Vec<String>,
    /// `lxc.rootfs.managed`.
    pub managed: bool,
    /// The rootfs's ownership was shifted through the container's id map (`warren-lxc shift`):
    /// present it as it is, without an idmapped mount.
    #[serde(default)]
    pub shifted: bool,
}

/// Kinds of Linux namespace.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum NsKind {
    Mount,
    Pid,
    Uts,
    Ipc,
    Net,
    User,
    Cgroup,
    Time,
}

impl NsKind {
    pub const ALL: [NsKind; 8] = [
        NsKind::Mount,
        NsKind::Pid,
        NsKind::Uts,
        NsKind::Ipc,
        NsKind::Net,
        NsKind::User,
        NsKind::Cgroup,
        NsKind::Time,
    ];

    /// The name LXC uses in `lxc.namespace.*` and `/proc/PID/ns/` (mount is `mnt` there).
    pub fn lxc_name(self) -> &'static str {
        match self {
            NsKind::Mount => "mnt",
            NsKind::Pid => "pid",
            NsKind::Uts => "uts",
            NsKind::Ipc => "ipc",
            NsKind::Net => "net",
            NsKind::User => "user",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }

    pub fn from_lxc_name(s: &str) -> Option<NsKind> {
        Some(match s {
            "mnt" | "mount" => NsKind::Mount,
            "pid" => NsKind::Pid,
            "uts" => NsKind::Uts,
            "ipc" => NsKind::Ipc,
            "net" => NsKind::Net,
            "user" => NsKind::User,
            "cgroup" => NsKind::Cgroup,
            "time" => NsKind::Time,
            _ => return None,
        })
    }
}

/// Which namespaces the container gets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NamespaceSpec {
    /// Namespaces created new for the container.
    pub new: Vec<NsKind>,
    /// `lxc.namespace.share.*`: join another process's or container's namespace
    /// (value: a pid, a `/proc/PID/ns/X` path, or a container name).
    pub share: Vec<(NsKind, String)>,
}

impl Default for NamespaceSpec {
    /// LXC's default set: everything but user (only with idmaps) and time.
    fn default() -> Self {
        NamespaceSpec {
            new: vec![
                NsKind::Mount,
                NsKind::Pid,
                NsKind::Uts,
                NsKind::Ipc,
                NsKind::Net,
                NsKind::Cgroup,
            ],
            share: Vec::new(),
        }
    }
}

/// The container's first process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InitSpec {
    /// argv; `lxc.init.cmd` split on whitespace, default `/sbin/init`.
    pub cmd: Vec<String>,
    /// `lxc.init.cwd`.
    pub cwd: Option<PathBuf>,
    /// `lxc.init.uid` / `lxc.init.gid` inside the container.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `lxc.init.groups`.
    pub groups: Vec<u32>,
}

impl Default for InitSpec {
    fn default() -> Self {
        InitSpec {
            cmd: vec!["/sbin/init".to_string()],
            cwd: None,
            uid: None,
            gid: None,
            groups: Vec::new(),
        }
    }
}

/// `lxc.mount.auto`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MountAuto {
    pub proc: Option<ProcMode>,
    pub sys: Option<SysMode>,
    pub cgroup: Option<CgroupMountMode>,
    /// `shmounts:HOST[:CONTAINER]`.
    pub shmounts: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProcMode {
    /// `proc:mixed`: /proc rw, /proc/sys and /proc/sysrq-trigger read-only (net/ writable).
    Mixed,
    /// `proc:rw`.
    Rw,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SysMode {
    /// `sys:mixed`: /sys read-only but /sys/devices/virtual/net writable.
    Mixed,
    Ro,
    Rw,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct CgroupMountMode {
    pub access: CgroupAccess,
    /// `cgroup-full:*`: the whole hierarchy rather than the container's subtree.
    pub full: bool,
    /// `:force`: mount even when the container keeps CAP_SYS_ADMIN.
    pub force: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CgroupAccess {
    /// The container's own cgroup writable, everything else read-only.
    Mixed,
    Ro,
    Rw,
}

/// One fstab-style mount (`lxc.mount.entry`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountEntry {
    /// Source: a host path for binds, or a name (`proc`, `tmpfs`, ...).
    pub source: String,
    /// Target: relative paths are inside the rootfs; absolute ones too (LXC strips the rootfs mount
    /// prefix when present). Never resolved outside the rootfs.
    pub target: PathBuf,
    pub fstype: String,
    /// Raw options, as written (`ro,bind,create=file,optional`). The runtime splits them into
    /// kernel flags, data and LXC's own options (`create=`, `optional`, `relative`).
    pub options: Vec<String>,
}

/// Console of the container (`lxc.console.*`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConsoleSpec {
    /// `lxc.console.path = none` disables the console.
    pub enabled: bool,
    /// `lxc.console.path = /dev/...`: a host terminal the console is joined to (what the
    /// container writes appears there, what is typed there reaches it); `auto`: none.
    pub path: Option<PathBuf>,
    /// `lxc.console.logfile`.
    pub logfile: Option<PathBuf>,
    /// `lxc.console.buffer.size` in bytes (0 = no ring buffer). LXC's default is none unless set;
    /// warren keeps 128 KiB by default so a console log can always be read.
    pub buffer_size: usize,
    /// `lxc.console.size`: max logfile size before rotation (0 = unlimited).
    pub log_size: u64,
    /// `lxc.console.rotate`.
    pub log_rotate: bool,
}

impl Default for ConsoleSpec {
    fn default() -> Self {
        ConsoleSpec {
            enabled: true,
            path: None,
            logfile: None,
            buffer_size: 128 * 1024,
            log_size: 0,
            log_rotate: false,
        }
    }
}

/// cgroup placement and raw settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CgroupSpec {
    /// `lxc.cgroup.<controller>.<key>` settings: (file name like `memory.limit_in_bytes`, value),
    /// applied in the v1 hierarchy of that controller.
    pub v1: Vec<(String, String)>,
    /// `lxc.cgroup2.<key>` settings: (file name like `memory.max`, value), applied in the unified
    /// hierarchy.
    pub v2: Vec<(String, String)>,
    /// `lxc.cgroup.dir` (relative to each hierarchy's root); `None`: warren's own naming.
    pub dir: Option<String>,
    /// `lxc.cgroup.relative`: place below the caller's cgroup rather than the hierarchy root.
    pub relative: bool,
}

/// Signals used to halt, reboot and stop (`lxc.signal.*`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignalSpec {
    pub halt: i32,
    pub reboot: i32,
    pub stop: i32,
}

impl Default for SignalSpec {
    /// LXC's defaults: SIGPWR to halt, SIGINT to reboot, SIGKILL to stop.
    fn default() -> Self {
        SignalSpec {
            halt: libc::SIGPWR,
            reboot: libc::SIGINT,
            stop: libc::SIGKILL,
        }
    }
}

/// The point in the container's life a hook runs at (`lxc.hook.<kind>`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum HookKind {
    PreStart,
    PreMount,
    Mount,
    Autodev,
    StartHost,
    Start,
    Stop,
    PostStop,
    Clone,
    Destroy,
}

impl HookKind {
    /// The name in `lxc.hook.<name>` and in `LXC_HOOK_TYPE`.
    pub fn lxc_name(self) -> &'static str {
        match self {
            HookKind::PreStart => "pre-start",
            HookKind::PreMount => "pre-mount",
            HookKind::Mount => "mount",
            HookKind::Autodev => "autodev",
            HookKind::StartHost => "start-host",
            HookKind::Start => "start",
            HookKind::Stop => "stop",
            HookKind::PostStop => "post-stop",
            HookKind::Clone => "clone",
            HookKind::Destroy => "destroy",
        }
    }

    pub fn from_lxc_name(s: &str) -> Option<HookKind> {
        Some(match s {
            "pre-start" => HookKind::PreStart,
            "pre-mount" => HookKind::PreMount,
            "mount" => HookKind::Mount,
            "autodev" => HookKind::Autodev,
            "start-host" => HookKind::StartHost,
            "start" => HookKind::Start,
            "stop" => HookKind::Stop,
            "post-stop" => HookKind::PostStop,
            "clone" => HookKind::Clone,
            "destroy" => HookKind::Destroy,
            _ => return None,
        })
    }
}

/// One hook: a shell command line, run with `sh -c`-like splitting as LXC does (`/bin/sh -c`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HookSpec {
    pub kind: HookKind,
    pub command: String,
}

/// A network interface of the container (`lxc.net.N.*`). Only `empty` and `none` act in this
/// version; the rest is carried for the networking work.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NetSpec {
    pub index: u32,
    /// `empty`, `none`, `veth`, `macvlan`, `ipvlan`, `phys`, `vlan`.
    pub kind: String,
    /// Every `lxc.net.N.<key>` as written, for the network layer.
    pub keys: Vec<(String, String)>,
}

/// One `lxc.idmap` line.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdMap {
    /// `true` for `u`, `false` for `g`.
    pub is_uid: bool,
    pub container_id: u32,
    pub host_id: u32,
    pub count: u32,
}

/// One `lxc.prlimit.<name>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Prlimit {
    /// Resource name without `RLIMIT_`, lower case (`nofile`).
    pub resource: String,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}
