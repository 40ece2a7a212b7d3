//! What `lxc-checkconfig` reports: whether this kernel and host have what containers need,
//! as data ([`check`]) and as LXC-like text ([`render`]).
//!
//! The kernel configuration is read when it can be found ($CONFIG, /proc/config.gz,
//! /boot/config-RELEASE, /lib/modules/RELEASE/build/.config); the running system is probed
//! besides (and instead, when there is no configuration), since a probe tells what is really
//! usable now: a namespace in /proc/self/ns, a filesystem in /proc/filesystems, a module in
//! /sys/module.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::cgroup::{Hierarchies, Layout};

/// The verdict on one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Enabled,
    /// Containers (as warren starts them by default) cannot work without it.
    RequiredMissing,
    /// A feature some containers use is unavailable.
    OptionalMissing,
    /// A description rather than a verdict (the cgroup layout, mount points).
    Info,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckItem {
    pub name: String,
    pub status: Status,
    /// More about the status: "loaded", "built in", "v1: /sys/fs/cgroup/memory"; for
    /// [`Status::Info`] the value itself.
    pub detail: Option<String>,
    /// What to do about it when missing (one line).
    pub hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSection {
    pub title: String,
    pub items: Vec<CheckItem>,
}

/// A parsed kernel `.config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelConfig {
    /// Where it was read from.
    pub source: PathBuf,
    /// `CONFIG_X` → `y`, `m`, `n` (for "is not set") or the value.
    pub entries: HashMap<String, String>,
}

impl KernelConfig {
    pub fn parse(source: &Path, text: &str) -> KernelConfig {
        let mut entries = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("# ") {
                if let Some(key) = rest.strip_suffix(" is not set") {
                    if key.starts_with("CONFIG_") {
                        entries.insert(key.to_string(), "n".to_string());
                    }
                }
            } else if let Some((k, v)) = line.split_once('=') {
                if k.starts_with("CONFIG_") {
                    entries.insert(k.to_string(), v.trim_matches('"').to_string());
                }
            }
        }
        KernelConfig {
            source: source.to_path_buf(),
            entries,
        }
    }

    /// Reads the first configuration found: $CONFIG (as for lxc-checkconfig), /proc/config.gz,
    /// /boot/config-RELEASE, /lib/modules/RELEASE/build/.config. Gzip is detected by content.
    pub fn load(release: &str) -> Option<KernelConfig> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os("CONFIG") {
            candidates.push(PathBuf::from(p));
        }
        candidates.push(PathBuf::from("/proc/config.gz"));
        candidates.push(PathBuf::from(format!("/boot/config-{release}")));
        candidates.push(PathBuf::from(format!(
            "/lib/modules/{release}/build/.config"
        )));
        candidates
            .into_iter()
            .find_map(|p| Some(KernelConfig::parse(&p, &read_maybe_gz(&p)?)))
    }

    /// `y`, `m`, `n` or the value; `None` when the option is not mentioned at all.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    fn is_on(&self, key: &str) -> bool {
        matches!(self.get(key), Some("y") | Some("m"))
    }
}

fn read_maybe_gz(path: &Path) -> Option<String> {
    let raw = fs::read(path).ok()?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = String::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_string(&mut out)
            .ok()?;
        Some(out)
    } else {
        String::from_utf8(raw).ok()
    }
}

/// What was probed on the running system (gathered by [`HostFacts::probe`], made up in tests).
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// `uname -r`.
    pub kernel_release: String,
    /// Entries of /proc/self/ns.
    pub namespaces: Vec<String>,
    /// Filesystem types in /proc/filesystems.
    pub filesystems: Vec<String>,
    /// Names in /sys/module (loaded modules, and built-in ones that have parameters).
    pub modules: Vec<String>,
    pub dev_fuse: bool,
    /// The `Seccomp:` field of /proc/self/status (present when the kernel has seccomp).
    pub seccomp: Option<u32>,
    /// The `CapBnd:` field of /proc/self/status.
    pub cap_bounding: Option<String>,
    /// /proc/sys/user/max_user_namespaces.
    pub max_user_namespaces: Option<u64>,
    /// The cgroup hierarchies, or why they could not be read.
    pub cgroups: Result<Hierarchies, String>,
    /// newuidmap / newgidmap found in PATH, and whether they are setuid root.
    pub newuidmap: Option<(PathBuf, bool)>,
    pub newgidmap: Option<(PathBuf, bool)>,
    /// Does /etc/subuid (/etc/subgid) have a range for root?
    pub subuid_root: bool,
    pub subgid_root: bool,
}

fn read_or_empty(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn status_field(status: &str, key: &str) -> Option<String> {
    status.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    })
}

/// Looks `name` up in PATH (plus the sbin directories, which a non-root PATH may lack).
fn find_in_path(name: &str) -> Option<(PathBuf, bool)> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path.split(':').chain([
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ]);
    for dir in dirs.filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(name);
        if let Ok(md) = fs::metadata(&p) {
            if md.is_file() {
                let mode = md.permissions().mode();
                let setuid_root =
                    mode & 0o4000 != 0 && std::os::unix::fs::MetadataExt::uid(&md) == 0;
                return Some((p, setuid_root));
            }
        }
    }
    None
}

fn has_root_range(path: &str) -> bool {
    read_or_empty(path).lines().any(|l| {
        let l = l.trim();
        l.starts_with("root:") || l.starts_with("0:")
    })
}

impl HostFacts {
    pub fn probe() -> HostFacts {
        let status = read_or_empty("/proc/self/status");
        let list_dir = |p: &str| -> Vec<String> {
            fs::read_dir(p)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        HostFacts {
            kernel_release: read_or_empty("/proc/sys/kernel/osrelease")
                .trim()
                .to_string(),
            namespaces: list_dir("/proc/self/ns"),
            filesystems: read_or_empty("/proc/filesystems")
                .lines()
                .filter_map(|l| l.split_whitespace().last().map(str::to_string))
                .collect(),
            modules: list_dir("/sys/module"),
            dev_fuse: Path::new("/dev/fuse").exists(),
            seccomp: status_field(&status, "Seccomp").and_then(|v| v.parse().ok()),
            cap_bounding: status_field(&status, "CapBnd"),
            max_user_namespaces: read_or_empty("/proc/sys/user/max_user_namespaces")
                .trim()
                .parse()
                .ok(),
            cgroups: Hierarchies::detect().map_err(|e| e.to_string()),
            newuidmap: find_in_path("newuidmap"),
            newgidmap: find_in_path("newgidmap"),
            subuid_root: has_root_range("/etc/subuid"),
            subgid_root: has_root_range("/etc/subgid"),
        }
    }

    /// (major, minor) of the running kernel.
    fn kernel_version(&self) -> Option<(u32, u32)> {
        let mut it = self.kernel_release.split(['.', '-']);
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        Some((major, minor))
    }
}

/// Checks this host: its kernel configuration (when found) and the running system.
pub fn check() -> Vec<CheckSection> {
    let facts = HostFacts::probe();
    let config = KernelConfig::load(&facts.kernel_release);
    check_with(config.as_ref(), &facts)
}

fn item(name: &str, status: Status, detail: Option<String>, hint: Option<&str>) -> CheckItem {
    let hint = match status {
        Status::RequiredMissing | Status::OptionalMissing => hint.map(str::to_string),
        _ => None,
    };
    CheckItem {
        name: name.to_string(),
        status,
        detail,
        hint,
    }
}

fn missing(required: bool) -> Status {
    if required {
        Status::RequiredMissing
    } else {
        Status::OptionalMissing
    }
}

/// An item that the kernel config decides (`keys` all on), falling back to `probed` without
/// a config. `module`: its name in /sys/module, for "loaded"/"not loaded" as LXC reports.
struct Kitem<'a> {
    name: &'a str,
    keys: &'a [&'a str],
    module: Option<&'a str>,
    probed: bool,
    required: bool,
    hint: &'a str,
}

fn kconfig_item(config: Option<&KernelConfig>, facts: &HostFacts, k: Kitem<'_>) -> CheckItem {
    let loaded = k
        .module
        .is_some_and(|m| facts.modules.iter().any(|x| x == m));
    match config {
        Some(cfg) => {
            if k.keys.iter().all(|key| cfg.is_on(key)) {
                let modular = k.keys.iter().any(|key| cfg.get(key) == Some("m"));
                let detail = match (modular, loaded) {
                    (true, true) => Some("loaded".to_string()),
                    (true, false) => Some("not loaded".to_string()),
                    (false, _) => None,
                };
                item(k.name, Status::Enabled, detail, None)
            } else {
                let off: Vec<&str> = k
                    .keys
                    .iter()
                    .copied()
                    .filter(|key| !cfg.is_on(key))
                    .collect();
                item(
                    k.name,
                    missing(k.required),
                    Some(format!("{} not set", off.join(", "))),
                    Some(k.hint),
                )
            }
        }
        None if k.probed || loaded => item(k.name, Status::Enabled, None, None),
        None => item(
            k.name,
            missing(k.required),
            Some("not found by probing (no kernel config to tell whether it is built)".to_string()),
            Some(k.hint),
        ),
    }
}

/// The checks, from a kernel config (if any) and probed facts.
pub fn check_with(config: Option<&KernelConfig>, facts: &HostFacts) -> Vec<CheckSection> {
    let has_ns = |n: &str| facts.namespaces.iter().any(|x| x == n);
    let has_fs = |n: &str| facts.filesystems.iter().any(|x| x == n);
    let kernel_at_least = |want: (u32, u32)| facts.kernel_version().is_some_and(|v| v >= want);

    // Namespaces: /proc/self/ns is the running kernel's own answer; the config only names the
    // option to turn on.
    let ns_item = |name: &str, ns: &str, key: &str, required: bool, hint: &str| {
        if has_ns(ns) {
            item(name, Status::Enabled, None, None)
        } else {
            item(
                name,
                missing(required),
                Some(format!("no /proc/self/ns/{ns}")),
                Some(&format!("{key}: {hint}")),
            )
        }
    };
    let mut ns = vec![
        if facts.namespaces.is_empty() && !config.is_some_and(|c| c.is_on("CONFIG_NAMESPACES")) {
            item(
                "Namespaces",
                Status::RequiredMissing,
                None,
                Some("CONFIG_NAMESPACES is needed for any container"),
            )
        } else {
            item("Namespaces", Status::Enabled, None, None)
        },
        ns_item(
            "Utsname namespace",
            "uts",
            "CONFIG_UTS_NS",
            true,
            "needed for the container's own hostname",
        ),
        ns_item(
            "Ipc namespace",
            "ipc",
            "CONFIG_IPC_NS",
            true,
            "needed for the container's own System V IPC",
        ),
        ns_item(
            "Pid namespace",
            "pid",
            "CONFIG_PID_NS",
            true,
            "needed for the container's own init (pid 1)",
        ),
        ns_item(
            "User namespace",
            "user",
            "CONFIG_USER_NS",
            false,
            "needed for unprivileged containers (lxc.idmap)",
        ),
        ns_item(
            "Network namespace",
            "net",
            "CONFIG_NET_NS",
            true,
            "needed for the container's own network stack",
        ),
        ns_item(
            "Cgroup namespace",
            "cgroup",
            "CONFIG_CGROUPS",
            true,
            "needed so the container sees its own cgroup as the root (Linux 4.6+)",
        ),
        ns_item(
            "Time namespace",
            "time",
            "CONFIG_TIME_NS",
            false,
            "needed only for lxc.time.offset.* (Linux 5.6+)",
        ),
    ];
    if has_ns("user") && facts.max_user_namespaces == Some(0) {
        ns.push(item(
            "User namespaces allowed",
            Status::OptionalMissing,
            Some("user.max_user_namespaces is 0".to_string()),
            Some("sysctl -w user.max_user_namespaces=15000 to allow unprivileged containers"),
        ));
    }

    let mut cg = Vec::new();
    let cgroups_fs = has_fs("cgroup") || has_fs("cgroup2");
    cg.push(if cgroups_fs || config.is_some_and(|c| c.is_on("CONFIG_CGROUPS")) {
        item("Cgroups", Status::Enabled, None, None)
    } else {
        item(
            "Cgroups",
            Status::RequiredMissing,
            None,
            Some("CONFIG_CGROUPS is needed for resource limits and for tracking a container's processes"),
        )
    });
    match &facts.cgroups {
        Err(e) => cg.push(item(
            "Cgroup hierarchies",
            Status::RequiredMissing,
            Some(e.clone()),
            Some("mount cgroup2 on /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup)"),
        )),
        Ok(h) => cg.extend(cgroup_items(h, kernel_at_least((5, 2)))),
    }
    if config.is_some_and(|c| c.get("CONFIG_CGROUPS").is_some()) {
        // Also list the config view of the controllers, as lxc-checkconfig does.
        for (name, key) in [
            ("Cgroup device (config)", "CONFIG_CGROUP_DEVICE"),
            ("Cgroup sched (config)", "CONFIG_CGROUP_SCHED"),
            ("Cgroup cpu account (config)", "CONFIG_CGROUP_CPUACCT"),
            ("Cgroup memory controller (config)", "CONFIG_MEMCG"),
            ("Cgroup cpuset (config)", "CONFIG_CPUSETS"),
            ("Cgroup BPF (config)", "CONFIG_CGROUP_BPF"),
        ] {
            cg.push(kconfig_item(
                config,
                facts,
                Kitem {
                    name,
                    keys: &[key],
                    module: None,
                    probed: false,
                    required: false,
                    hint: &format!("{key} is off in the kernel config"),
                },
            ));
        }
    }

    let probe_mod = |m: &str| facts.modules.iter().any(|x| x == m);
    let mut misc = vec![
        item(
            "Kernel configuration",
            Status::Info,
            Some(config.map_or_else(
                || "not found (only the running kernel was probed)".to_string(),
                |c| c.source.display().to_string(),
            )),
            None,
        ),
        kconfig_item(
            config,
            facts,
            Kitem {
                name: "Veth pair device",
                keys: &["CONFIG_VETH"],
                module: Some("veth"),
                probed: probe_mod("veth"),
                required: false,
                hint: "CONFIG_VETH is needed for veth networking (lxc.net.N.type = veth)",
            },
        ),
        kconfig_item(
            config,
            facts,
            Kitem {
                name: "Macvlan",
                keys: &["CONFIG_MACVLAN"],
                module: Some("macvlan"),
                probed: probe_mod("macvlan"),
                required: false,
                hint: "CONFIG_MACVLAN is needed for lxc.net.N.type = macvlan",
            },
        ),
        kconfig_item(
            config,
            facts,
            Kitem {
                name: "Vlan",
                keys: &["CONFIG_VLAN_8021Q"],
                module: Some("8021q"),
                probed: probe_mod("8021q"),
                required: false,
                hint: "CONFIG_VLAN_8021Q is needed for lxc.net.N.type = vlan",
            },
        ),
        kconfig_item(
            config,
            facts,
            Kitem {
                name: "Bridges",
                keys: &["CONFIG_BRIDGE"],
                module: Some("bridge"),
                probed: probe_mod("bridge"),
                required: false,
                hint: "CONFIG_BRIDGE is needed for a host bridge such as lxcbr0",
            },
        ),
        kconfig_item(
            config,
            facts,
            Kitem {
                name: "Nftables",
                keys: &["CONFIG_NF_TABLES"],
                module: Some("nf_tables"),
                probed: probe_mod("nf_tables"),
                required: false,
                hint: "CONFIG_NF_TABLES is needed for the NAT rules of a container bridge",
            },
        ),
        kconfig_item(
            config,
            facts,
            Kitem {
                name: "NAT",
                keys: &["CONFIG_NF_NAT"],
                module: Some("nf_nat"),
                probed: probe_mod("nf_nat"),
                required: false,
                hint: "CONFIG_NF_NAT is needed to masquerade container traffic",
            },
        ),
    ];
    misc.push(match (facts.seccomp, config) {
        (Some(_), _) => item("Seccomp", Status::Enabled, None, None),
        (None, Some(c)) if c.is_on("CONFIG_SECCOMP_FILTER") => {
            item("Seccomp", Status::Enabled, None, None)
        }
        _ => item(
            "Seccomp",
            Status::OptionalMissing,
            None,
            Some("CONFIG_SECCOMP_FILTER is needed for lxc.seccomp.profile"),
        ),
    });
    misc.push(if facts.cap_bounding.is_some() {
        item("Capabilities", Status::Enabled, None, None)
    } else {
        item(
            "Capabilities",
            Status::RequiredMissing,
            Some("no CapBnd in /proc/self/status".to_string()),
            Some("the kernel must support capability bounding sets for lxc.cap.drop"),
        )
    });
    misc.push(kconfig_item(
        config,
        facts,
        Kitem {
            name: "Devpts",
            keys: &["CONFIG_UNIX98_PTYS"],
            module: None,
            probed: has_fs("devpts"),
            required: true,
            hint: "CONFIG_UNIX98_PTYS (devpts) is needed for the container's consoles and ttys",
        },
    ));
    misc.push(kconfig_item(
        config,
        facts,
        Kitem {
            name: "Overlay filesystem",
            keys: &["CONFIG_OVERLAY_FS"],
            module: Some("overlay"),
            probed: has_fs("overlay"),
            required: false,
            hint: "CONFIG_OVERLAY_FS is needed for overlay rootfs and snapshot clones",
        },
    ));
    misc.push(kconfig_item(
        config,
        facts,
        Kitem {
            name: "FUSE (for use with lxcfs)",
            keys: &["CONFIG_FUSE_FS"],
            module: Some("fuse"),
            probed: facts.dev_fuse,
            required: false,
            hint: "CONFIG_FUSE_FS (/dev/fuse) is needed for lxcfs",
        },
    ));
    misc.push(if kernel_at_least((5, 12)) {
        item("Idmapped mounts", Status::Enabled, None, None)
    } else {
        item(
            "Idmapped mounts",
            Status::OptionalMissing,
            Some(format!("kernel {}", facts.kernel_release)),
            Some("idmapped mounts (mount_setattr) need Linux 5.12 or newer; unprivileged rootfs must then be chowned"),
        )
    });
    for (name, found) in [
        ("newuidmap", &facts.newuidmap),
        ("newgidmap", &facts.newgidmap),
    ] {
        misc.push(match found {
            Some((p, true)) => item(name, Status::Enabled, Some(p.display().to_string()), None),
            Some((p, false)) => item(
                name,
                Status::OptionalMissing,
                Some(format!("{} is not setuid root (file capabilities were not checked)", p.display())),
                Some("newuidmap/newgidmap must be setuid root or have cap_setuid/cap_setgid file capabilities for unprivileged containers"),
            ),
            None => item(
                name,
                Status::OptionalMissing,
                Some("not found in PATH".to_string()),
                Some("install the uidmap package (newuidmap/newgidmap) for unprivileged containers"),
            ),
        });
    }
    for (name, ok, file) in [
        (
            "/etc/subuid entry for root",
            facts.subuid_root,
            "/etc/subuid",
        ),
        (
            "/etc/subgid entry for root",
            facts.subgid_root,
            "/etc/subgid",
        ),
    ] {
        misc.push(if ok {
            item(name, Status::Enabled, None, None)
        } else {
            item(
                name,
                Status::OptionalMissing,
                None,
                Some(&format!("add \"root:100000:65536\" to {file} to run unprivileged containers as root with lxc.idmap")),
            )
        });
    }

    vec![
        CheckSection {
            title: "Namespaces".into(),
            items: ns,
        },
        CheckSection {
            title: "Control groups".into(),
            items: cg,
        },
        CheckSection {
            title: "Misc".into(),
            items: misc,
        },
    ]
}

/// The layout, the mounts, and where each controller warren uses lives.
fn cgroup_items(h: &Hierarchies, kernel_has_v2_freezer: bool) -> Vec<CheckItem> {
    let layout = h.layout();
    let mut out = vec![item(
        "Cgroup layout",
        Status::Info,
        Some(layout.describe().to_string()),
        None,
    )];
    if !h.v1().is_empty() {
        let mounts: Vec<String> = h
            .v1()
            .iter()
            .map(|v| {
                let mut what = v.controllers.clone();
                if let Some(n) = &v.name {
                    what.push(format!("name={n}"));
                }
                format!("{} ({})", v.mountpoint.display(), what.join(","))
            })
            .collect();
        out.push(item(
            "Cgroup v1 mount points",
            Status::Info,
            Some(mounts.join(", ")),
            None,
        ));
    }
    if let Some(u) = h.unified() {
        let ctl = if u.controllers.is_empty() {
            "no controllers".to_string()
        } else {
            format!("controllers: {}", u.controllers.join(" "))
        };
        out.push(item(
            "Cgroup v2 mount point",
            Status::Info,
            Some(format!("{} ({ctl})", u.mountpoint.display())),
            None,
        ));
    }
    // On a hybrid host a controller counts where warren will use it: v1 first.
    let locate = |c: &str| -> Option<String> {
        if let Some(v) = h.v1_for(c) {
            return Some(format!("v1: {}", v.mountpoint.display()));
        }
        h.unified()
            .filter(|u| u.controllers.iter().any(|x| x == c))
            .map(|u| format!("cgroup2: {}", u.mountpoint.display()))
    };
    for (name, c, hint) in [
        (
            "Cgroup memory controller",
            "memory",
            "CONFIG_MEMCG is needed for lxc.cgroup(2).memory.* limits and memory statistics",
        ),
        (
            "Cgroup pids controller",
            "pids",
            "CONFIG_CGROUP_PIDS is needed for lxc.cgroup(2).pids.max",
        ),
        (
            "Cgroup cpu controller",
            "cpu",
            "CONFIG_CGROUP_SCHED is needed for lxc.cgroup(2).cpu.* limits",
        ),
        (
            "Cgroup cpuset",
            "cpuset",
            "CONFIG_CPUSETS is needed for lxc.cgroup(2).cpuset.*",
        ),
        (
            "Cgroup blkio/io controller",
            if layout == Layout::Unified {
                "io"
            } else {
                "blkio"
            },
            "CONFIG_BLK_CGROUP is needed for block I/O limits and statistics",
        ),
    ] {
        out.push(match locate(c) {
            Some(where_) => item(name, Status::Enabled, Some(where_), None),
            None => item(name, Status::OptionalMissing, None, Some(hint)),
        });
    }
    let freezer = if layout != Layout::Unified && h.v1_for("freezer").is_some() {
        locate("freezer")
    } else if h.unified().is_some() && kernel_has_v2_freezer {
        Some("cgroup2: cgroup.freeze".to_string())
    } else {
        None
    };
    out.push(match freezer {
        Some(w) => item("Cgroup freezer", Status::Enabled, Some(w), None),
        None => item(
            "Cgroup freezer",
            Status::OptionalMissing,
            None,
            Some("CONFIG_CGROUP_FREEZER (v1) or Linux 5.2+ (cgroup2) is needed for lxc-freeze"),
        ),
    });
    out.push(match h.v1_for("devices") {
        Some(v) => item(
            "Cgroup device",
            Status::Enabled,
            Some(format!("v1: {}", v.mountpoint.display())),
            None,
        ),
        None if h.unified().is_some() => item(
            "Cgroup device",
            Status::OptionalMissing,
            Some("cgroup2 device rules are BPF programs, which warren does not load yet".to_string()),
            Some("lxc.cgroup(2).devices.* rules are not enforced on this host: the container's root can open any device node it can create"),
        ),
        None => item(
            "Cgroup device",
            Status::OptionalMissing,
            None,
            Some("CONFIG_CGROUP_DEVICE is needed to confine device access"),
        ),
    });
    out
}

fn status_text(i: &CheckItem) -> String {
    let base = match i.status {
        Status::Enabled => "enabled",
        Status::RequiredMissing => "required",
        Status::OptionalMissing => "missing",
        Status::Info => return i.detail.clone().unwrap_or_default(),
    };
    match (&i.status, &i.detail) {
        (Status::Enabled, Some(d)) => format!("{base}, {d}"),
        (_, Some(d)) => format!("{base} ({d})"),
        (_, None) => base.to_string(),
    }
}

/// lxc-checkconfig's text: a line per item under "--- Section ---" headers, then what is
/// missing and what to do about it.
pub fn render(sections: &[CheckSection]) -> String {
    let mut out = String::new();
    for (n, s) in sections.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        out.push_str(&format!("--- {} ---\n", s.title));
        for i in &s.items {
            out.push_str(&format!("{}: {}\n", i.name, status_text(i)));
        }
    }
    let missing: Vec<&CheckItem> = sections
        .iter()
        .flat_map(|s| &s.items)
        .filter(|i| matches!(i.status, Status::RequiredMissing | Status::OptionalMissing))
        .collect();
    out.push('\n');
    if missing.is_empty() {
        out.push_str("Everything warren uses is available.\n");
    } else {
        let required = missing
            .iter()
            .filter(|i| i.status == Status::RequiredMissing)
            .count();
        out.push_str(&format!(
            "Missing: {required} required, {} optional\n",
            missing.len() - required
        ));
        for i in missing {
            let tag = if i.status == Status::RequiredMissing {
                " (required)"
            } else {
                ""
            };
            out.push_str(&format!(
                "  {}{tag}: {}\n",
                i.name,
                i.hint.as_deref().unwrap_or("no hint")
            ));
        }
    }
    out.push_str(
        "\nNote: before booting a new kernel, you can check its configuration:\n  CONFIG=/path/to/config lxc-checkconfig\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
#
# Automatically generated file; DO NOT EDIT.
CONFIG_NAMESPACES=y
CONFIG_UTS_NS=y
CONFIG_CGROUPS=y
CONFIG_MEMCG=y
CONFIG_VETH=m
CONFIG_MACVLAN=m
# CONFIG_VLAN_8021Q is not set
CONFIG_BRIDGE=y
CONFIG_NF_TABLES=m
CONFIG_NF_NAT=m
CONFIG_UNIX98_PTYS=y
CONFIG_OVERLAY_FS=m
CONFIG_FUSE_FS=y
CONFIG_SECCOMP_FILTER=y
CONFIG_LOCALVERSION=\"-test\"
";

    fn facts() -> HostFacts {
        let mi = "32 31 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  33 31 0:30 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n\
                  41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        HostFacts {
            kernel_release: "6.1.0-18-amd64".into(),
            namespaces: ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]
                .map(String::from)
                .to_vec(),
            filesystems: ["cgroup", "cgroup2", "devpts", "overlay"]
                .map(String::from)
                .to_vec(),
            modules: ["veth", "nf_tables"].map(String::from).to_vec(),
            dev_fuse: true,
            seccomp: Some(0),
            cap_bounding: Some("000001ffffffffff".into()),
            max_user_namespaces: Some(1000),
            cgroups: Hierarchies::detect_from(mi, Some(Path::new("/nonexistent")))
                .map_err(|e| e.to_string()),
            newuidmap: Some((PathBuf::from("/usr/bin/newuidmap"), true)),
            newgidmap: None,
            subuid_root: true,
            subgid_root: false,
        }
    }

    fn find<'a>(s: &'a [CheckSection], name: &str) -> &'a CheckItem {
        s.iter()
            .flat_map(|s| &s.items)
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("no item {name}"))
    }

    #[test]
    fn checkconfig_parses_config_text() {
        let c = KernelConfig::parse(Path::new("/boot/config-x"), CONFIG);
        assert_eq!(c.get("CONFIG_VETH"), Some("m"));
        assert_eq!(c.get("CONFIG_BRIDGE"), Some("y"));
        assert_eq!(c.get("CONFIG_VLAN_8021Q"), Some("n"));
        assert_eq!(c.get("CONFIG_LOCALVERSION"), Some("-test"));
        assert_eq!(c.get("CONFIG_NOT_MENTIONED"), None);
        assert!(c.is_on("CONFIG_OVERLAY_FS") && !c.is_on("CONFIG_VLAN_8021Q"));
    }

    #[test]
    fn checkconfig_items_from_config_and_facts() {
        let c = KernelConfig::parse(Path::new("/boot/config-x"), CONFIG);
        let s = check_with(Some(&c), &facts());
        assert_eq!(
            s.iter().map(|s| s.title.as_str()).collect::<Vec<_>>(),
            ["Namespaces", "Control groups", "Misc"]
        );
        assert_eq!(find(&s, "User namespace").status, Status::Enabled);
        assert_eq!(find(&s, "Time namespace").status, Status::Enabled);
        let veth = find(&s, "Veth pair device");
        assert_eq!(
            (&veth.status, veth.detail.as_deref()),
            (&Status::Enabled, Some("loaded"))
        );
        assert_eq!(find(&s, "Macvlan").detail.as_deref(), Some("not loaded"));
        let vlan = find(&s, "Vlan");
        assert_eq!(vlan.status, Status::OptionalMissing);
        assert!(vlan
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("CONFIG_VLAN_8021Q")));
        assert_eq!(find(&s, "Bridges").detail, None);
        assert_eq!(
            find(&s, "Cgroup layout").detail.as_deref(),
            Some("hybrid (cgroup v1 + cgroup2)")
        );
        assert_eq!(
            find(&s, "Cgroup memory controller").detail.as_deref(),
            Some("v1: /sys/fs/cgroup/memory")
        );
        assert_eq!(
            find(&s, "Cgroup pids controller").status,
            Status::OptionalMissing
        );
        assert_eq!(
            find(&s, "Cgroup freezer").detail.as_deref(),
            Some("v1: /sys/fs/cgroup/freezer")
        );
        assert_eq!(find(&s, "Cgroup device").status, Status::OptionalMissing);
        assert_eq!(find(&s, "Idmapped mounts").status, Status::Enabled);
        assert_eq!(find(&s, "newuidmap").status, Status::Enabled);
        assert_eq!(
            find(&s, "newgidmap").hint.as_deref(),
            Some("install the uidmap package (newuidmap/newgidmap) for unprivileged containers")
        );
        assert_eq!(
            find(&s, "/etc/subgid entry for root").status,
            Status::OptionalMissing
        );

        let text = render(&s);
        assert!(
            text.starts_with(
                "--- Namespaces ---\nNamespaces: enabled\nUtsname namespace: enabled\n"
            ),
            "{text}"
        );
        assert!(text.contains("\n--- Control groups ---\n"));
        assert!(text.contains("Veth pair device: enabled, loaded\n"));
        assert!(text.contains("Vlan: missing (CONFIG_VLAN_8021Q not set)\n"));
        assert!(text.contains("\nMissing: 0 required, "), "{text}");
        assert!(text.contains("  newgidmap: install the uidmap package"));
    }

    #[test]
    fn checkconfig_probes_without_config() {
        let mut f = facts();
        f.namespaces.retain(|n| n != "net" && n != "time");
        f.kernel_release = "5.10.0".into();
        f.cgroups = Err("no cgroup hierarchy is mounted".into());
        let s = check_with(None, &f);
        let net = find(&s, "Network namespace");
        assert_eq!(net.status, Status::RequiredMissing);
        assert!(net
            .hint
            .as_deref()
            .is_some_and(|h| h.starts_with("CONFIG_NET_NS")));
        assert_eq!(find(&s, "Time namespace").status, Status::OptionalMissing);
        assert_eq!(find(&s, "Veth pair device").status, Status::Enabled); // module loaded
        assert_eq!(find(&s, "Macvlan").status, Status::OptionalMissing);
        assert_eq!(find(&s, "Overlay filesystem").status, Status::Enabled);
        assert_eq!(
            find(&s, "Cgroup hierarchies").status,
            Status::RequiredMissing
        );
        assert_eq!(find(&s, "Idmapped mounts").status, Status::OptionalMissing);
        let text = render(&s);
        assert!(
            text.contains("Network namespace: required (no /proc/self/ns/net)\n"),
            "{text}"
        );
        assert!(text.contains("Missing: 2 required, "), "{text}");
        assert!(
            text.contains("  Network namespace (required): CONFIG_NET_NS: "),
            "{text}"
        );
    }

    #[test]
    fn checkconfig_reads_gzip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("config.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, CONFIG.as_bytes()).expect("gz");
        fs::write(&p, enc.finish().expect("gz")).expect("write");
        let text = read_maybe_gz(&p).expect("read");
        assert_eq!(text, CONFIG);
    }

    /// This host, for real: must not panic, and finds what every Linux has.
    #[test]
    fn checkconfig_real_host() {
        let s = check();
        assert_eq!(find(&s, "Pid namespace").status, Status::Enabled);
        let text = render(&s);
        assert!(text.contains("--- Misc ---"));
        eprintln!("{text}");
    }
}
