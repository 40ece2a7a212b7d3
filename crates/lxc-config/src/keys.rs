//! The table of every LXC 5/6 config key: its value syntax, whether it accumulates, and what
//! warren does with it; plus the pre-3.0 key names and what replaced them.

use crate::value::ValueKind;

/// What this version of warren does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Parsed and acted on.
    Implemented,
    /// Accepted with a warning and ignored, as LXC does on a host without the facility
    /// (AppArmor, SELinux).
    UnsupportedOnHost,
    /// Parsed and validated, carried into the spec, but not enforced yet; listed in
    /// `ContainerSpec::unenforced` so the runtime warns once at start.
    NotYetEnforced,
}

/// Whether a key name is complete or a family prefix (`lxc.sysctl.` + anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyShape {
    Exact,
    Prefix,
}

/// One entry of the key table.
#[derive(Debug)]
pub struct KeyInfo {
    /// Full key, or the prefix with its trailing dot for families. For `lxc.net.N.*` keys this is
    /// the part after `lxc.net.N.`.
    pub name: &'static str,
    pub shape: KeyShape,
    pub status: KeyStatus,
    /// Repeating the key adds to a list (an empty value clears it) instead of replacing.
    pub list: bool,
    pub value: ValueKind,
}

const fn k(name: &'static str, status: KeyStatus, list: bool, value: ValueKind) -> KeyInfo {
    KeyInfo {
        name,
        shape: KeyShape::Exact,
        status,
        list,
        value,
    }
}

const fn p(name: &'static str, status: KeyStatus, list: bool, value: ValueKind) -> KeyInfo {
    KeyInfo {
        name,
        shape: KeyShape::Prefix,
        status,
        list,
        value,
    }
}

use KeyStatus::{Implemented as I, NotYetEnforced as N, UnsupportedOnHost as U};
use ValueKind as V;

/// Every top-level key (LXC's `config_jump_table`), exact keys first so they win over prefixes.
pub static KEYS: &[KeyInfo] = &[
    k("lxc.arch", I, false, V::Arch),
    k("lxc.apparmor.profile", U, false, V::Path),
    k("lxc.apparmor.allow_incomplete", U, false, V::Bool),
    k("lxc.apparmor.allow_nesting", U, false, V::Bool),
    k("lxc.apparmor.raw", U, true, V::Any),
    k("lxc.autodev", I, false, V::Bool),
    k("lxc.autodev.tmpfs.size", N, false, V::U32),
    k("lxc.cap.drop", I, true, V::Caps),
    k("lxc.cap.keep", I, true, V::CapsKeep),
    k("lxc.cgroup.dir", I, false, V::Path),
    k("lxc.cgroup.dir.container", N, false, V::Path),
    k("lxc.cgroup.dir.container.inner", N, false, V::Path),
    k("lxc.cgroup.dir.monitor", N, false, V::Path),
    k("lxc.cgroup.dir.monitor.pivot", N, false, V::Path),
    k("lxc.cgroup.relative", I, false, V::Bool),
    k("lxc.console.buffer.size", I, false, V::SizeOrAuto),
    k("lxc.console.logfile", I, false, V::Path),
    k("lxc.console.path", I, false, V::ConsolePath),
    k("lxc.console.rotate", I, false, V::Bool),
    k("lxc.console.size", I, false, V::SizeOrAuto),
    k("lxc.environment", I, true, V::Environment),
    k("lxc.ephemeral", I, false, V::Bool),
    k("lxc.execute.cmd", N, false, V::Path),
    k("lxc.group", I, true, V::Path),
    k("lxc.hook.version", I, false, V::HookVersion),
    k("lxc.idmap", I, true, V::IdMap),
    k("lxc.include", I, true, V::Path),
    k("lxc.init.cmd", I, false, V::Path),
    k("lxc.init.cwd", I, false, V::Path),
    k("lxc.init.gid", I, false, V::U32),
    k("lxc.init.groups", I, false, V::Groups),
    k("lxc.init.uid", I, false, V::U32),
    k("lxc.keyring.session", N, false, V::Bool),
    k("lxc.log.file", I, false, V::Path),
    k("lxc.log.level", I, false, V::LogLevel),
    k("lxc.log.syslog", I, false, V::SyslogFacility),
    k("lxc.monitor.signal.pdeath", N, false, V::Signal),
    k("lxc.monitor.unshare", N, false, V::Bool),
    k("lxc.mount.auto", I, true, V::MountAuto),
    k("lxc.mount.entry", I, true, V::MountEntry),
    k("lxc.mount.fstab", I, false, V::Path),
    k("lxc.namespace.clone", I, true, V::Namespaces),
    k("lxc.namespace.keep", I, true, V::Namespaces),
    k("lxc.net", I, true, V::ClearOnly),
    k("lxc.no_new_privs", I, false, V::Bool),
    k("lxc.pty.max", I, false, V::U32),
    k("lxc.rootfs.managed", I, false, V::Bool),
    k("lxc.rootfs.mount", I, false, V::Path),
    k("lxc.rootfs.options", I, false, V::RootfsOptions),
    k("lxc.rootfs.path", I, false, V::RootfsPath),
    k("lxc.sched.core", N, false, V::Bool),
    k("lxc.seccomp.allow_nesting", N, false, V::Bool),
    k("lxc.seccomp.notify.cookie", N, false, V::Any),
    k("lxc.seccomp.notify.proxy", N, false, V::Path),
    k("lxc.seccomp.profile", I, false, V::Path),
    k("lxc.selinux.context", U, false, V::Any),
    k("lxc.selinux.context.keyring", U, false, V::Any),
    k("lxc.signal.halt", I, false, V::Signal),
    k("lxc.signal.reboot", I, false, V::Signal),
    k("lxc.signal.stop", I, false, V::Signal),
    k("lxc.start.auto", I, false, V::Bool),
    k("lxc.start.delay", I, false, V::U32),
    k("lxc.start.order", I, false, V::I64),
    k("lxc.time.offset.boot", N, false, V::TimeOffset),
    k("lxc.time.offset.monotonic", N, false, V::TimeOffset),
    k("lxc.tty.dir", I, false, V::Path),
    k("lxc.tty.max", I, false, V::U32),
    k("lxc.uts.name", I, false, V::UtsName),
    // Families. `lxc.cgroup.devices.*` / `lxc.cgroup2.devices.*` are carved out as not yet
    // enforced in `status_of` (device policy needs an eBPF program on cgroup2).
    p("lxc.cgroup.", I, true, V::Any),
    p("lxc.cgroup2.", I, true, V::Any),
    p("lxc.hook.", I, true, V::Any),
    p("lxc.namespace.share.", I, false, V::Path),
    p("lxc.prlimit.", I, false, V::Prlimit),
    p("lxc.proc.", I, false, V::Any),
    p("lxc.sysctl.", I, false, V::Any),
];

/// Per-interface keys, `lxc.net.N.<name>` (LXC's `config_jump_table_net`).
pub static NET_KEYS: &[KeyInfo] = &[
    k("type", I, false, V::NetType),
    k("flags", I, false, V::NetFlags),
    k("link", I, false, V::Path),
    k("name", I, false, V::Path),
    k("hwaddr", I, false, V::MacAddr),
    k("mtu", I, false, V::U32),
    k("ipv4.address", I, true, V::Ipv4Addr),
    k("ipv4.gateway", I, false, V::Ipv4Gateway),
    k("ipv6.address", I, true, V::Ipv6Addr),
    k("ipv6.gateway", I, false, V::Ipv6Gateway),
    k("script.up", I, false, V::Path),
    k("script.down", I, false, V::Path),
    k("l2proxy", I, false, V::Bool),
    k("macvlan.mode", I, false, V::MacvlanMode),
    k("ipvlan.mode", I, false, V::IpvlanMode),
    k("ipvlan.isolation", I, false, V::IpvlanIsolation),
    k("vlan.id", I, false, V::VlanId),
    k("veth.mode", I, false, V::VethMode),
    k("veth.pair", I, false, V::Path),
    k("veth.n_rxqueues", N, false, V::U32),
    k("veth.n_txqueues", N, false, V::U32),
    k("veth.ipv4.route", I, true, V::Ipv4Route),
    k("veth.ipv6.route", I, true, V::Ipv6Route),
    k("veth.vlan.id", N, false, V::VlanIdOrNone),
    k("veth.vlan.tagged.id", N, true, V::VlanId),
];

/// `lxc.net.N` on its own: only `lxc.net.N =` (clear interface N) is meaningful.
static NET_IFACE: KeyInfo = k("lxc.net.N", I, true, V::ClearOnly);

/// A key looked up in the tables.
#[derive(Debug, Clone, Copy)]
pub struct Lookup {
    pub info: &'static KeyInfo,
    /// The interface index for `lxc.net.N.*` keys.
    pub net_index: Option<u32>,
    /// The bare family name of a prefix key (`lxc.cgroup`, `lxc.hook`): only clearing is allowed.
    pub bare_family: bool,
}

/// Finds `key` in the tables; `None` means an unknown key. A family key with a bad suffix (an
/// unknown hook type, prlimit resource or namespace) is unknown too.
pub fn lookup(key: &str) -> Option<Lookup> {
    if let Some(rest) = key.strip_prefix("lxc.net.") {
        let (idx, sub) = match rest.split_once('.') {
            Some((i, s)) => (i, Some(s)),
            None => (rest, None),
        };
        if idx.is_empty() || !idx.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let index: u32 = idx.parse().ok()?;
        let info = match sub {
            None => &NET_IFACE,
            Some(s) => NET_KEYS.iter().find(|i| i.name == s)?,
        };
        return Some(Lookup {
            info,
            net_index: Some(index),
            bare_family: false,
        });
    }
    if let Some(info) = KEYS
        .iter()
        .find(|i| i.shape == KeyShape::Exact && i.name == key)
    {
        return Some(Lookup {
            info,
            net_index: None,
            bare_family: false,
        });
    }
    for info in KEYS.iter().filter(|i| i.shape == KeyShape::Prefix) {
        if key == info.name.trim_end_matches('.') {
            return Some(Lookup {
                info,
                net_index: None,
                bare_family: true,
            });
        }
        if let Some(suffix) = key.strip_prefix(info.name) {
            if suffix.is_empty() || !suffix_ok(info.name, suffix) {
                return None;
            }
            return Some(Lookup {
                info,
                net_index: None,
                bare_family: false,
            });
        }
    }
    None
}

fn suffix_ok(prefix: &str, suffix: &str) -> bool {
    match prefix {
        "lxc.hook." => warren_runtime::spec::HookKind::from_lxc_name(suffix).is_some(),
        "lxc.prlimit." => crate::value::PRLIMITS.contains(&suffix),
        "lxc.namespace.share." => warren_runtime::spec::NsKind::from_lxc_name(suffix).is_some(),
        // A cgroup file is `<controller>.<file>`.
        "lxc.cgroup." | "lxc.cgroup2." => {
            suffix.contains('.') && !suffix.starts_with('.') && !suffix.ends_with('.')
        }
        _ => !suffix.contains(char::is_whitespace),
    }
}

/// The status of one concrete `key = value` setting. Most keys have one status; a few depend on
/// the key's suffix or the value (device cgroup files, network types, the console device).
pub fn status_of(_key: &str, value: &str, looked: &Lookup) -> KeyStatus {
    if looked.net_index.is_some()
        && looked.info.name == "type"
        && !matches!(
            value,
            "empty" | "none" | "veth" | "macvlan" | "phys" | "vlan" | "ipvlan"
        )
    {
        return KeyStatus::NotYetEnforced;
    }
    looked.info.status
}

/// What a pre-3.0 key became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Legacy {
    Renamed(String),
    Removed,
}

/// If `key` is a pre-3.0 name, what replaced it (the mapping `lxc-update-config` applies).
/// `next_net` is the index an unindexed `lxc.network.type` would get, `last_net` the index
/// other unindexed `lxc.network.*` keys refer to.
pub fn legacy(key: &str, next_net: u32, last_net: u32) -> Option<Legacy> {
    let renamed = |s: &str| Some(Legacy::Renamed(s.to_string()));
    match key {
        "lxc.id_map" => return renamed("lxc.idmap"),
        "lxc.utsname" => return renamed("lxc.uts.name"),
        "lxc.rootfs" => return renamed("lxc.rootfs.path"),
        "lxc.rootfs.backend" => return renamed("lxc.rootfs.path"),
        "lxc.tty" => return renamed("lxc.tty.max"),
        "lxc.pts" => return renamed("lxc.pty.max"),
        "lxc.devttydir" => return renamed("lxc.tty.dir"),
        "lxc.loglevel" => return renamed("lxc.log.level"),
        "lxc.logfile" => return renamed("lxc.log.file"),
        "lxc.syslog" => return renamed("lxc.log.syslog"),
        "lxc.init_cmd" => return renamed("lxc.init.cmd"),
        "lxc.init_uid" => return renamed("lxc.init.uid"),
        "lxc.init_gid" => return renamed("lxc.init.gid"),
        "lxc.haltsignal" => return renamed("lxc.signal.halt"),
        "lxc.rebootsignal" => return renamed("lxc.signal.reboot"),
        "lxc.stopsignal" => return renamed("lxc.signal.stop"),
        "lxc.aa_profile" => return renamed("lxc.apparmor.profile"),
        "lxc.aa_allow_incomplete" => return renamed("lxc.apparmor.allow_incomplete"),
        "lxc.se_context" => return renamed("lxc.selinux.context"),
        "lxc.console" => return renamed("lxc.console.path"),
        "lxc.seccomp" => return renamed("lxc.seccomp.profile"),
        "lxc.mount" => return renamed("lxc.mount.fstab"),
        "lxc.network" => return renamed("lxc.net"),
        "lxc.pivotdir" | "lxc.kmsg" => return Some(Legacy::Removed),
        _ => {}
    }
    if let Some(res) = key.strip_prefix("lxc.limit.") {
        return renamed(&format!("lxc.prlimit.{res}"));
    }
    // lxc.net.N.ipv4 / ipv6 never existed in 3.0 but are what a half-converted config has.
    if let Some(rest) = key.strip_prefix("lxc.net.") {
        if let Some((idx, sub)) = rest.split_once('.') {
            if idx.bytes().all(|b| b.is_ascii_digit()) && (sub == "ipv4" || sub == "ipv6") {
                return renamed(&format!("lxc.net.{idx}.{sub}.address"));
            }
        }
        return None;
    }
    let rest = key.strip_prefix("lxc.network.")?;
    let map_sub = |sub: &str| match sub {
        "ipv4" => "ipv4.address".to_string(),
        "ipv6" => "ipv6.address".to_string(),
        s => s.to_string(),
    };
    if let Some((idx, sub)) = rest.split_once('.') {
        if !idx.is_empty() && idx.bytes().all(|b| b.is_ascii_digit()) {
            return renamed(&format!("lxc.net.{idx}.{}", map_sub(sub)));
        }
    } else if rest.bytes().all(|b| b.is_ascii_digit()) {
        return renamed(&format!("lxc.net.{rest}"));
    }
    let idx = if rest == "type" { next_net } else { last_net };
    renamed(&format!("lxc.net.{idx}.{}", map_sub(rest)))
}
