//! Value syntax of LXC config keys: validation at parse time and the typed parsers the spec
//! mapping reuses (signals, sizes, idmaps, mount entries, `lxc.mount.auto` tokens, prlimits).

use std::net::{Ipv4Addr, Ipv6Addr};
use warren_runtime::spec::{IdMap, NsKind};

/// The syntax a key's value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Anything (including free text such as hook commands).
    Any,
    /// A path or name: anything non-empty.
    Path,
    /// `0` or `1`.
    Bool,
    U32,
    U64,
    I64,
    /// A signal name (`SIGPWR`, `PWR`, `RTMIN+3`) or number.
    Signal,
    /// A byte size (`128k`, `1MB`, `4096`) or `auto`.
    SizeOrAuto,
    Arch,
    LogLevel,
    SyslogFacility,
    /// Space separated capability names (`lxc.cap.drop`).
    Caps,
    /// Like `Caps`, plus `none` (`lxc.cap.keep`).
    CapsKeep,
    IdMap,
    MountAuto,
    MountEntry,
    /// Space separated namespace names.
    Namespaces,
    HookVersion,
    RootfsPath,
    RootfsOptions,
    /// A device path or `none`.
    ConsolePath,
    /// `NAME=VALUE` or `NAME` (inherited from the caller's environment).
    Environment,
    UtsName,
    /// Comma separated gids.
    Groups,
    /// `SOFT[:HARD]`, each a number or `unlimited`.
    Prlimit,
    /// Signed integer with an optional unit (`h`, `min`, `s`, `ms`, `us`, `ns`).
    TimeOffset,
    NetType,
    NetFlags,
    MacAddr,
    Ipv4Addr,
    Ipv4Gateway,
    Ipv6Addr,
    Ipv6Gateway,
    Ipv4Route,
    Ipv6Route,
    VethMode,
    MacvlanMode,
    IpvlanMode,
    IpvlanIsolation,
    /// A VLAN id (0..=4094) or `none`.
    VlanIdOrNone,
    VlanId,
    /// Keys that only take an empty value, which clears a family (`lxc.net =`, `lxc.cgroup =`).
    ClearOnly,
}

/// Checks `value` (already trimmed and unquoted, non-empty) against `kind`; `Err` says why not.
pub fn validate(kind: ValueKind, value: &str) -> Result<(), String> {
    match kind {
        ValueKind::Any | ValueKind::Path => Ok(()),
        ValueKind::Bool => parse_bool(value).map(|_| ()),
        ValueKind::U32 => parse_u32(value).map(|_| ()),
        ValueKind::U64 => value
            .parse::<u64>()
            .map(|_| ())
            .map_err(|_| "expected a non-negative integer".into()),
        ValueKind::I64 => value
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| "expected an integer".into()),
        ValueKind::Signal => parse_signal(value).map(|_| ()),
        ValueKind::SizeOrAuto => {
            if value == "auto" {
                Ok(())
            } else {
                parse_size(value).map(|_| ())
            }
        }
        ValueKind::Arch => {
            if ARCHES.contains(&value) {
                Ok(())
            } else {
                Err(format!(
                    "unknown architecture (known: {})",
                    ARCHES.join(", ")
                ))
            }
        }
        ValueKind::LogLevel => parse_log_level(value).map(|_| ()),
        ValueKind::SyslogFacility => {
            const FACILITIES: [&str; 11] = [
                "daemon", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
                "local7", "user", "syslog",
            ];
            if FACILITIES.contains(&value) {
                Ok(())
            } else {
                Err("expected a syslog facility (daemon, local0 .. local7)".into())
            }
        }
        ValueKind::Caps | ValueKind::CapsKeep => {
            for tok in value.split_whitespace() {
                if kind == ValueKind::CapsKeep && tok == "none" {
                    continue;
                }
                cap_name(tok)?;
            }
            Ok(())
        }
        ValueKind::IdMap => parse_idmap(value).map(|_| ()),
        ValueKind::MountAuto => {
            for tok in value.split_whitespace() {
                parse_mount_auto_token(tok)?;
            }
            Ok(())
        }
        ValueKind::MountEntry => parse_mount_line(value).map(|_| ()),
        ValueKind::Namespaces => {
            for tok in value.split_whitespace() {
                ns_kind(tok)?;
            }
            Ok(())
        }
        ValueKind::HookVersion => match value {
            "0" | "1" => Ok(()),
            _ => Err("expected 0 or 1".into()),
        },
        ValueKind::RootfsPath => parse_rootfs_path(value).map(|_| ()),
        ValueKind::RootfsOptions => {
            for opt in value.split(',') {
                let name = opt.split('=').next().unwrap_or("");
                if matches!(name, "create" | "optional" | "relative") {
                    return Err(format!(
                        "\"{name}\" is a mount entry option, not a rootfs option"
                    ));
                }
            }
            Ok(())
        }
        ValueKind::ConsolePath => {
            if value == "none" || value == "auto" || value.starts_with('/') {
                Ok(())
            } else {
                Err("expected \"none\", \"auto\" or an absolute device path".into())
            }
        }
        ValueKind::Environment => {
            let name = value.split('=').next().unwrap_or("");
            if name.is_empty() || name.contains(char::is_whitespace) {
                Err("expected NAME=VALUE or NAME".into())
            } else {
                Ok(())
            }
        }
        ValueKind::UtsName => {
            if value.len() > 64 {
                Err("a host name has at most 64 bytes".into())
            } else {
                Ok(())
            }
        }
        ValueKind::Groups => parse_groups(value).map(|_| ()),
        ValueKind::Prlimit => parse_prlimit_value(value).map(|_| ()),
        ValueKind::TimeOffset => parse_time_offset(value).map(|_| ()),
        ValueKind::NetType => {
            if NET_TYPES.contains(&value) {
                Ok(())
            } else {
                Err(format!("expected one of {}", NET_TYPES.join(", ")))
            }
        }
        ValueKind::NetFlags => {
            if value == "up" {
                Ok(())
            } else {
                Err("the only flag is \"up\"".into())
            }
        }
        ValueKind::MacAddr => check_mac(value),
        ValueKind::Ipv4Addr => {
            // "ADDR[/PREFIX] [BROADCAST]"
            let mut parts = value.split_whitespace();
            let addr = parts.next().unwrap_or("");
            check_cidr4(addr, true)?;
            if let Some(bcast) = parts.next() {
                bcast
                    .parse::<Ipv4Addr>()
                    .map_err(|_| format!("bad broadcast address \"{bcast}\""))?;
            }
            if parts.next().is_some() {
                return Err("expected ADDRESS[/PREFIX] [BROADCAST]".into());
            }
            Ok(())
        }
        ValueKind::Ipv4Gateway => {
            if value == "auto" || value == "dev" || value.parse::<Ipv4Addr>().is_ok() {
                Ok(())
            } else {
                Err("expected an IPv4 address, \"auto\" or \"dev\"".into())
            }
        }
        ValueKind::Ipv6Addr => check_cidr6(value, true),
        ValueKind::Ipv6Gateway => {
            if value == "auto" || value == "dev" || value.parse::<Ipv6Addr>().is_ok() {
                Ok(())
            } else {
                Err("expected an IPv6 address, \"auto\" or \"dev\"".into())
            }
        }
        ValueKind::Ipv4Route => check_cidr4(value, false),
        ValueKind::Ipv6Route => check_cidr6(value, false),
        ValueKind::VethMode => one_of(value, &["bridge", "router"]),
        ValueKind::MacvlanMode => one_of(value, &["private", "vepa", "bridge", "passthru"]),
        ValueKind::IpvlanMode => one_of(value, &["l3", "l3s", "l2"]),
        ValueKind::IpvlanIsolation => one_of(value, &["bridge", "private", "vepa"]),
        ValueKind::VlanIdOrNone => {
            if value == "none" {
                Ok(())
            } else {
                check_vlan(value)
            }
        }
        ValueKind::VlanId => check_vlan(value),
        ValueKind::ClearOnly => {
            Err("only an empty value (which clears the settings) is allowed".into())
        }
    }
}

fn one_of(value: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!("expected one of {}", allowed.join(", ")))
    }
}

/// Network types LXC knows.
pub const NET_TYPES: [&str; 7] = ["empty", "none", "veth", "macvlan", "ipvlan", "phys", "vlan"];

/// Architectures `lxc.arch` accepts (LXC's personality table).
pub const ARCHES: [&str; 30] = [
    "x86",
    "linux32",
    "i386",
    "i486",
    "i586",
    "i686",
    "athlon",
    "mips",
    "mipsel",
    "ppc",
    "arm",
    "armv7l",
    "armhf",
    "armel",
    "powerpc",
    "linux64",
    "x86_64",
    "amd64",
    "mips64",
    "mips64el",
    "ppc64",
    "ppc64le",
    "ppc64el",
    "powerpc64",
    "s390x",
    "aarch64",
    "arm64",
    "riscv64",
    "loongarch64",
    "s390",
];

pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err("expected 0 or 1".into()),
    }
}

pub fn parse_u32(value: &str) -> Result<u32, String> {
    value
        .parse::<u32>()
        .map_err(|_| "expected a non-negative integer below 2^32".into())
}

/// Signal names without the `SIG` prefix, with their numbers on Linux.
const SIGNALS: [(&str, i32); 34] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The realtime signal range as glibc reports it to programs (LXC's SIGRTMIN/SIGRTMAX).
fn rt_range() -> (i32, i32) {
    (libc::SIGRTMIN(), libc::SIGRTMAX())
}

/// A signal as LXC's `lxc.signal.*` take it: a number, or a name with or without `SIG`, including
/// `RTMIN+N` and `RTMAX-N`. Case-insensitive like LXC.
pub fn parse_signal(value: &str) -> Result<i32, String> {
    let (rtmin, rtmax) = rt_range();
    if let Ok(n) = value.parse::<i32>() {
        if n >= 1 && n <= rtmax {
            return Ok(n);
        }
        return Err(format!("signal numbers go from 1 to {rtmax}"));
    }
    let upper = value.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = SIGNALS.iter().find(|(s, _)| *s == name) {
        return Ok(*n);
    }
    let rt = |base: i32, rest: &str, sign: i32| -> Result<i32, String> {
        let off = if rest.is_empty() {
            0
        } else {
            rest.parse::<i32>()
                .map_err(|_| "bad realtime signal offset".to_string())?
        };
        let n = base + sign * off;
        if n < rtmin || n > rtmax {
            return Err(format!("realtime signals go from {rtmin} to {rtmax}"));
        }
        Ok(n)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return match rest.strip_prefix('+') {
            Some(off) => rt(rtmin, off, 1),
            None if rest.is_empty() => rt(rtmin, "", 1),
            None => Err("expected RTMIN+N".into()),
        };
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return match rest.strip_prefix('-') {
            Some(off) => rt(rtmax, off, -1),
            None if rest.is_empty() => rt(rtmax, "", -1),
            None => Err("expected RTMAX-N".into()),
        };
    }
    Err("unknown signal".into())
}

/// A byte size: digits with an optional binary suffix (`k`, `KB`, `KiB`, `M`, `G`, `B`).
pub fn parse_size(value: &str) -> Result<u64, String> {
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    if digits_end == 0 {
        return Err("expected a size such as 4096, 128k or 1MB".into());
    }
    let n: u64 = value[..digits_end]
        .parse()
        .map_err(|_| "size too large".to_string())?;
    let mult: u64 = match value[digits_end..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err("unknown size unit (use B, kB, MB or GB)".into()),
    };
    n.checked_mul(mult).ok_or_else(|| "size too large".into())
}

pub fn parse_log_level(value: &str) -> Result<u32, String> {
    const LEVELS: [&str; 9] = [
        "TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "CRIT", "ALERT", "FATAL",
    ];
    if let Ok(n) = value.parse::<u32>() {
        if (n as usize) < LEVELS.len() {
            return Ok(n);
        }
    }
    let upper = value.to_ascii_uppercase();
    let upper = if upper == "WARNING" {
        "WARN".to_string()
    } else {
        upper
    };
    LEVELS
        .iter()
        .position(|l| *l == upper)
        .map(|p| p as u32)
        .ok_or_else(|| format!("expected 0-8 or one of {}", LEVELS.join(", ")))
}

/// Capability names in kernel order (lower case, without `cap_`).
pub const CAPS: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// Normalises a capability as LXC accepts it (`sys_admin`, `CAP_SYS_ADMIN`, or its number) to the
/// lower-case name without `cap_`.
pub fn cap_name(token: &str) -> Result<String, String> {
    if let Ok(n) = token.parse::<usize>() {
        return CAPS
            .get(n)
            .map(|s| s.to_string())
            .ok_or_else(|| format!("unknown capability number {n}"));
    }
    let lower = token.to_ascii_lowercase();
    let name = lower.strip_prefix("cap_").unwrap_or(&lower);
    if CAPS.contains(&name) {
        Ok(name.to_string())
    } else {
        Err(format!("unknown capability \"{token}\""))
    }
}

pub fn ns_kind(name: &str) -> Result<NsKind, String> {
    NsKind::from_lxc_name(name).ok_or_else(|| {
        format!("unknown namespace \"{name}\" (known: mnt, pid, uts, ipc, net, user, cgroup, time)")
    })
}

/// One `lxc.idmap` line: `u|g|b CONTAINER HOST COUNT`; `b` maps both uids and gids.
pub fn parse_idmap(value: &str) -> Result<Vec<IdMap>, String> {
    let f: Vec<&str> = value.split_whitespace().collect();
    if f.len() != 4 {
        return Err("expected \"u|g|b CONTAINER_ID HOST_ID COUNT\"".into());
    }
    let num = |s: &str, what: &str| -> Result<u32, String> {
        s.parse::<u32>().map_err(|_| format!("bad {what} \"{s}\""))
    };
    let container_id = num(f[1], "container id")?;
    let host_id = num(f[2], "host id")?;
    let count = num(f[3], "count")?;
    if count == 0 {
        return Err("the count must be at least 1".into());
    }
    if container_id.checked_add(count - 1).is_none() || host_id.checked_add(count - 1).is_none() {
        return Err("the range goes past 2^32".into());
    }
    let map = |is_uid| IdMap {
        is_uid,
        container_id,
        host_id,
        count,
    };
    match f[0] {
        "u" => Ok(vec![map(true)]),
        "g" => Ok(vec![map(false)]),
        "b" => Ok(vec![map(true), map(false)]),
        other => Err(format!("unknown map type \"{other}\" (expected u, g or b)")),
    }
}

/// What one `lxc.mount.auto` token sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoToken {
    Proc(warren_runtime::spec::ProcMode),
    Sys(warren_runtime::spec::SysMode),
    /// access `None` is LXC's "no specifier": rw when the container keeps CAP_SYS_ADMIN, mixed
    /// otherwise.
    Cgroup {
        access: Option<warren_runtime::spec::CgroupAccess>,
        full: bool,
        force: bool,
    },
    /// `shmounts:HOST[:CONTAINER]`, the container side defaulting to `/dev/.lxc-mounts`.
    Shmounts(String, String),
}

pub fn parse_mount_auto_token(tok: &str) -> Result<AutoToken, String> {
    use warren_runtime::spec::{CgroupAccess, ProcMode, SysMode};
    let bad = || {
        format!(
            "unknown token \"{tok}\" (known: proc[:mixed|:rw], sys[:ro|:mixed|:rw], \
             cgroup[-full][:mixed|:ro|:rw][:force], shmounts:HOST[:CONTAINER])"
        )
    };
    Ok(match tok {
        "proc" | "proc:mixed" => AutoToken::Proc(ProcMode::Mixed),
        "proc:rw" => AutoToken::Proc(ProcMode::Rw),
        "sys" | "sys:mixed" => AutoToken::Sys(SysMode::Mixed),
        "sys:ro" => AutoToken::Sys(SysMode::Ro),
        "sys:rw" => AutoToken::Sys(SysMode::Rw),
        _ if tok.starts_with("shmounts:") => {
            let rest = &tok["shmounts:".len()..];
            if rest.is_empty() {
                return Err("shmounts needs a host path".into());
            }
            match rest.split_once(':') {
                Some((host, cont)) if !cont.is_empty() => {
                    AutoToken::Shmounts(host.to_string(), cont.to_string())
                }
                Some((host, _)) => AutoToken::Shmounts(host.to_string(), "/dev/.lxc-mounts".into()),
                None => AutoToken::Shmounts(rest.to_string(), "/dev/.lxc-mounts".into()),
            }
        }
        _ => {
            let (full, rest) = if let Some(r) = tok.strip_prefix("cgroup-full") {
                (true, r)
            } else if let Some(r) = tok.strip_prefix("cgroup") {
                (false, r)
            } else {
                return Err(bad());
            };
            let (rest, force) = match rest.strip_suffix(":force") {
                Some(r) => (r, true),
                None => (rest, false),
            };
            let access = match rest {
                "" => None,
                ":mixed" => Some(CgroupAccess::Mixed),
                ":ro" => Some(CgroupAccess::Ro),
                ":rw" => Some(CgroupAccess::Rw),
                _ => return Err(bad()),
            };
            AutoToken::Cgroup {
                access,
                full,
                force,
            }
        }
    })
}

/// Decodes fstab's octal escapes (`\040` for a space), as getmntent does.
fn unescape_fstab(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One fstab line: `SOURCE TARGET FSTYPE [OPTIONS [DUMP [PASS]]]`.
pub fn parse_mount_line(value: &str) -> Result<warren_runtime::spec::MountEntry, String> {
    let f: Vec<&str> = value.split_whitespace().collect();
    if f.len() < 3 || f.len() > 6 {
        return Err("expected \"SOURCE TARGET FSTYPE [OPTIONS [DUMP [PASS]]]\"".into());
    }
    for (i, what) in [(4, "dump"), (5, "pass")] {
        if let Some(n) = f.get(i) {
            n.parse::<u32>()
                .map_err(|_| format!("the {what} field must be a number"))?;
        }
    }
    let options = f
        .get(3)
        .map(|o| {
            o.split(',')
                .filter(|s| !s.is_empty())
                .map(unescape_fstab)
                .collect()
        })
        .unwrap_or_else(|| vec!["defaults".to_string()]);
    Ok(warren_runtime::spec::MountEntry {
        source: unescape_fstab(f[0]),
        target: unescape_fstab(f[1]).into(),
        fstype: unescape_fstab(f[2]),
        options,
    })
}

/// Storage types `lxc.rootfs.path` may name before a `:`.
pub const STORAGE_TYPES: [&str; 9] = [
    "dir",
    "overlay",
    "overlayfs",
    "btrfs",
    "zfs",
    "lvm",
    "loop",
    "nbd",
    "rbd",
];

/// Splits `lxc.rootfs.path` into (storage type, path). A bare path is `dir`.
pub fn parse_rootfs_path(value: &str) -> Result<(&str, &str), String> {
    if let Some((ty, rest)) = value.split_once(':') {
        if STORAGE_TYPES.contains(&ty) {
            if rest.is_empty() {
                return Err(format!("\"{ty}:\" needs a path after it"));
            }
            return Ok((ty, rest));
        }
        if !value.starts_with('/') {
            return Err(format!(
                "unknown storage type \"{ty}\" (known: {})",
                STORAGE_TYPES.join(", ")
            ));
        }
    }
    Ok(("dir", value))
}

pub fn parse_groups(value: &str) -> Result<Vec<u32>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().map_err(|_| format!("bad gid \"{s}\"")))
        .collect()
}

/// Resources `lxc.prlimit.<name>` accepts (RLIMIT_ names, lower case).
pub const PRLIMITS: [&str; 16] = [
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `SOFT[:HARD]`: `None` is unlimited; a lone value sets both.
pub fn parse_prlimit_value(value: &str) -> Result<(Option<u64>, Option<u64>), String> {
    let one = |s: &str| -> Result<Option<u64>, String> {
        if s == "unlimited" {
            Ok(None)
        } else {
            s.parse::<u64>()
                .map(Some)
                .map_err(|_| format!("bad limit \"{s}\" (a number or \"unlimited\")"))
        }
    };
    match value.split_once(':') {
        Some((soft, hard)) => Ok((one(soft)?, one(hard)?)),
        None => {
            let v = one(value)?;
            Ok((v, v))
        }
    }
}

/// A time namespace offset in nanoseconds.
pub fn parse_time_offset(value: &str) -> Result<i128, String> {
    let split = value
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+'))))
        .map(|(i, _)| i)
        .unwrap_or(value.len());
    let n: i128 = value[..split].parse().map_err(|_| {
        "expected an integer with an optional unit (h, min, s, ms, us, ns)".to_string()
    })?;
    let mult: i128 = match &value[split..] {
        "" | "s" => 1_000_000_000,
        "h" => 3_600_000_000_000,
        "min" | "m" => 60_000_000_000,
        "ms" => 1_000_000,
        "us" => 1_000,
        "ns" => 1,
        u => return Err(format!("unknown time unit \"{u}\" (h, min, s, ms, us, ns)")),
    };
    Ok(n * mult)
}

fn check_mac(value: &str) -> Result<(), String> {
    // LXC fills `x` digits with random ones when it starts the container.
    let parts: Vec<&str> = value.split(':').collect();
    let ok = parts.len() == 6
        && parts.iter().all(|p| {
            p.len() == 2
                && p.chars()
                    .all(|c| c.is_ascii_hexdigit() || c == 'x' || c == 'X')
        });
    if ok {
        Ok(())
    } else {
        Err("expected a MAC address like 00:16:3e:xx:xx:xx".into())
    }
}

fn check_prefix(p: &str, max: u32) -> Result<(), String> {
    match p.parse::<u32>() {
        Ok(n) if n <= max => Ok(()),
        _ => Err(format!("bad prefix length \"{p}\" (0..={max})")),
    }
}

fn check_cidr4(value: &str, prefix_optional: bool) -> Result<(), String> {
    let (addr, prefix) = match value.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (value, None),
    };
    addr.parse::<Ipv4Addr>()
        .map_err(|_| format!("bad IPv4 address \"{addr}\""))?;
    match prefix {
        Some(p) => check_prefix(p, 32),
        None if prefix_optional => Ok(()),
        None => Err("expected ADDRESS/PREFIX".into()),
    }
}

fn check_cidr6(value: &str, prefix_optional: bool) -> Result<(), String> {
    let (addr, prefix) = match value.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (value, None),
    };
    addr.parse::<Ipv6Addr>()
        .map_err(|_| format!("bad IPv6 address \"{addr}\""))?;
    match prefix {
        Some(p) => check_prefix(p, 128),
        None if prefix_optional => Ok(()),
        None => Err("expected ADDRESS/PREFIX".into()),
    }
}

fn check_vlan(value: &str) -> Result<(), String> {
    match value.parse::<u16>() {
        Ok(n) if n <= 4094 => Ok(()),
        _ => Err("expected a VLAN id from 0 to 4094".into()),
    }
}
