//! What `ls` and `info` show about a container: state, pid, resource use from its cgroup, and its
//! interfaces and addresses read from /proc/<init>/net (no netns entering needed).

use std::path::Path;

use crate::common::Container;
use warren_runtime::cgroup::Hierarchies;
use warren_runtime::proto::State;

/// A container's status, as far as it can be known.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub name: String,
    pub state: State,
    pub pid: Option<i32>,
    pub autostart: bool,
    pub groups: Vec<String>,
    pub unprivileged: bool,
    pub memory_bytes: Option<u64>,
    pub kmem_bytes: Option<u64>,
    pub swap_bytes: Option<u64>,
    pub cpu_ns: Option<u64>,
    pub blkio_bytes: Option<u64>,
    pub interfaces: Vec<Interface>,
    pub ipv4: Vec<String>,
    pub ipv6: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Interface {
    pub name: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

pub fn status(c: &Container) -> Status {
    let cfg = c.load_config().ok();
    let get = |k: &str| cfg.as_ref().and_then(|cfg| cfg.get(k));
    let autostart = get("lxc.start.auto")
        .map(|v| v.trim() == "1")
        .unwrap_or(false);
    let groups = get("lxc.group")
        .map(|g| {
            g.split(|ch: char| ch == ',' || ch.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let unprivileged = get("lxc.idmap").is_some();
    let info = c.info();
    let mut st = Status {
        name: c.name.clone(),
        state: info
            .as_ref()
            .and_then(|i| i.state)
            .unwrap_or(State::Stopped),
        pid: info.as_ref().map(|i| i.pid),
        autostart,
        groups,
        unprivileged,
        memory_bytes: None,
        kmem_bytes: None,
        swap_bytes: None,
        cpu_ns: None,
        blkio_bytes: None,
        interfaces: Vec::new(),
        ipv4: Vec::new(),
        ipv6: Vec::new(),
    };
    if let Some(info) = &info {
        if let Ok(h) = Hierarchies::detect() {
            // the payload cgroup: the parent of the one init lives in
            let payload: Vec<std::path::PathBuf> = info
                .cgroup_paths
                .iter()
                .filter_map(|p| p.parent().map(Path::to_path_buf))
                .collect();
            if let Ok(cg) = h.open_paths(&payload) {
                let s = cg.stats();
                st.memory_bytes = s.memory_bytes;
                st.kmem_bytes = s.kmem_bytes;
                st.swap_bytes = s.swap_bytes;
                st.cpu_ns = s.cpu_ns;
                st.blkio_bytes = s.blkio_bytes;
            }
        }
        let proc_net = Path::new("/proc").join(info.pid.to_string()).join("net");
        st.interfaces = if info.host_links.is_empty() {
            interfaces(&proc_net)
        } else {
            // as LXC: the host sides of the container's veths, with their counters
            info.host_links
                .iter()
                .map(|l| {
                    let stat = |f: &str| {
                        std::fs::read_to_string(format!("/sys/class/net/{l}/statistics/{f}"))
                            .ok()
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0)
                    };
                    Interface {
                        name: l.clone(),
                        rx_bytes: stat("rx_bytes"),
                        tx_bytes: stat("tx_bytes"),
                    }
                })
                .collect()
        };
        st.ipv4 = ipv4_addrs(&proc_net);
        st.ipv6 = ipv6_addrs(&proc_net);
    }
    st
}

fn interfaces(proc_net: &Path) -> Vec<Interface> {
    let Ok(text) = std::fs::read_to_string(proc_net.join("dev")) else {
        return Vec::new();
    };
    let mut out: Vec<Interface> = text
        .lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            Some(Interface {
                name: name.trim().to_string(),
                rx_bytes: *f.first()?,
                tx_bytes: *f.get(8)?,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Local IPv4 addresses (not loopback) from fib_trie's "/32 host LOCAL" leaves.
fn ipv4_addrs(proc_net: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(proc_net.join("fib_trie")) else {
        return Vec::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for w in lines.windows(2) {
        if w[1].contains("/32 host LOCAL") {
            if let Some(addr) = w[0].trim().strip_prefix("|-- ") {
                let addr = addr.trim().to_string();
                if !addr.starts_with("127.") && !out.contains(&addr) {
                    out.push(addr);
                }
            }
        }
    }
    out
}

/// Global IPv6 addresses from if_inet6 (scope 00).
fn ipv6_addrs(proc_net: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(proc_net.join("if_inet6")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 6 || f[3] != "00" || f[0].len() != 32 {
                return None;
            }
            let groups: Vec<u16> = (0..8)
                .filter_map(|i| u16::from_str_radix(&f[0][i * 4..i * 4 + 4], 16).ok())
                .collect();
            let a = std::net::Ipv6Addr::new(
                groups[0], groups[1], groups[2], groups[3], groups[4], groups[5], groups[6],
                groups[7],
            );
            Some(a.to_string())
        })
        .collect()
}

/// LXC's human sizes: "954 bytes", "348.00 KiB", "1.10 MiB" (1024-based, two decimals).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.2} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_lxc_info() {
        assert_eq!(human_bytes(954), "954 bytes");
        assert_eq!(human_bytes(356352), "348.00 KiB");
        assert_eq!(human_bytes(1153434), "1.10 MiB");
    }

    #[test]
    fn fib_trie_local_addresses() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("fib_trie"),
            "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 10.0.3.106\n        /32 host LOCAL\n     |-- 127.0.0.1\n        /32 host LOCAL\n",
        )
        .unwrap();
        assert_eq!(ipv4_addrs(dir.path()), vec!["10.0.3.106"]);
    }
}
