//! What LXC's lxc-net does, as `warren-lxc net start|stop|status`: a host bridge (lxcbr0,
//! 10.0.3.1/24 by default) with dnsmasq for DHCP and DNS, and NAT for its subnet in an nftables
//! table of its own, all from /etc/default/lxc-net. What `start` made is recorded, and `stop`
//! removes exactly that.

use anyhow::{anyhow, bail, Context, Result};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use warren_net::{Cidr, Netlink};

/// /etc/default/lxc-net, with LXC's defaults for what it doesn't say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LxcNetConfig {
    pub use_bridge: bool,
    pub bridge: String,
    pub addr: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub network: Cidr,
    pub dhcp_range: String,
    pub dhcp_max: u32,
    pub dhcp_confile: Option<PathBuf>,
    pub domain: Option<String>,
    pub dhcp_ping: bool,
    pub ipv6: Option<Cidr>,
    pub ipv6_nat: bool,
    /// Masquerade the bridge's IPv4 subnet (lxc-net always does; `net start --no-nat` doesn't).
    pub nat: bool,
}

impl Default for LxcNetConfig {
    fn default() -> Self {
        LxcNetConfig {
            use_bridge: true,
            bridge: "lxcbr0".into(),
            addr: Ipv4Addr::new(10, 0, 3, 1),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            network: Cidr {
                addr: IpAddr::V4(Ipv4Addr::new(10, 0, 3, 0)),
                prefix: 24,
            },
            dhcp_range: "10.0.3.2,10.0.3.254".into(),
            dhcp_max: 253,
            dhcp_confile: None,
            domain: None,
            dhcp_ping: true,
            ipv6: None,
            ipv6_nat: false,
            nat: true,
        }
    }
}

/// Parses an lxc-net defaults file (shell assignments; comments and unknown variables are
/// ignored as the shell would). A bad value is an error naming the file, line and variable.
pub fn parse_config(text: &str, file: &Path) -> Result<LxcNetConfig> {
    let mut c = LxcNetConfig::default();
    let mut addr_set = false;
    let mut ipv6_addr: Option<Ipv6Part> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let value = value
            .trim()
            .trim_matches('"')
            .trim_matches('\'')
            .to_string();
        let bad = |why: String| anyhow!("{}:{}: {key}: {why}", file.display(), n + 1);
        let boolean = |v: &str| match v {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" | "" => Ok(false),
            other => Err(bad(format!("\"{other}\" is not true or false"))),
        };
        match key {
            "USE_LXC_BRIDGE" => c.use_bridge = boolean(&value)?,
            "LXC_BRIDGE" => {
                warren_net::check_name(&value).map_err(bad)?;
                c.bridge = value;
            }
            "LXC_ADDR" => {
                c.addr = value
                    .parse()
                    .map_err(|_| bad(format!("\"{value}\" is not an IPv4 address")))?;
                addr_set = true;
            }
            "LXC_NETMASK" => {
                let m: Ipv4Addr = value
                    .parse()
                    .map_err(|_| bad(format!("\"{value}\" is not a netmask")))?;
                let bits = u32::from(m);
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return Err(bad(format!("\"{value}\" is not a contiguous netmask")));
                }
                c.netmask = m;
            }
            "LXC_NETWORK" => {
                let n: Cidr = value.parse().map_err(bad)?;
                if !n.addr.is_ipv4() {
                    return Err(bad(format!("\"{value}\" is not an IPv4 network")));
                }
                c.network = n;
            }
            "LXC_DHCP_RANGE" => {
                let parts: Vec<&str> = value.split(',').collect();
                if parts.len() != 2 || parts.iter().any(|p| p.trim().parse::<Ipv4Addr>().is_err()) {
                    return Err(bad(format!("\"{value}\" is not FIRST,LAST")));
                }
                c.dhcp_range = value;
            }
            "LXC_DHCP_MAX" => {
                c.dhcp_max = value
                    .parse()
                    .map_err(|_| bad(format!("\"{value}\" is not a number")))?;
            }
            "LXC_DHCP_CONFILE" => c.dhcp_confile = (!value.is_empty()).then(|| value.into()),
            "LXC_DOMAIN" => c.domain = (!value.is_empty()).then_some(value),
            "LXC_DHCP_PING" => c.dhcp_ping = boolean(&value)?,
            "LXC_IPV6_ADDR" if !value.is_empty() => {
                let a: std::net::Ipv6Addr = value
                    .parse()
                    .map_err(|_| bad(format!("\"{value}\" is not an IPv6 address")))?;
                ipv6_addr.get_or_insert_with(Ipv6Part::default).addr = Some(a);
            }
            "LXC_IPV6_MASK" if !value.is_empty() => {
                let m: u8 = value
                    .parse()
                    .ok()
                    .filter(|m| *m <= 128)
                    .ok_or_else(|| bad(format!("\"{value}\" is not a prefix length")))?;
                ipv6_addr.get_or_insert_with(Ipv6Part::default).mask = Some(m);
            }
            "LXC_IPV6_NAT" => c.ipv6_nat = boolean(&value)?,
            _ => {}
        }
    }
    if let Some(p) = ipv6_addr {
        if let Some(a) = p.addr {
            c.ipv6 = Some(Cidr {
                addr: IpAddr::V6(a),
                prefix: p.mask.unwrap_or(64),
            });
        }
    }
    let _ = addr_set;
    let prefix = u32::from(c.netmask).leading_ones() as u8;
    let addr_in_net = Cidr {
        addr: IpAddr::V4(c.addr),
        prefix: c.network.prefix,
    };
    if !same_subnet(addr_in_net, c.network.addr) {
        bail!(
            "{}: LXC_ADDR {} is not in LXC_NETWORK {}",
            file.display(),
            c.addr,
            c.network
        );
    }
    if prefix != c.network.prefix {
        bail!(
            "{}: LXC_NETMASK {} does not match LXC_NETWORK {}",
            file.display(),
            c.netmask,
            c.network
        );
    }
    Ok(c)
}

#[derive(Default)]
struct Ipv6Part {
    addr: Option<std::net::Ipv6Addr>,
    mask: Option<u8>,
}

fn same_subnet(c: Cidr, ip: IpAddr) -> bool {
    match (c.addr, ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(c.prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        _ => false,
    }
}

/// What `start` made, kept for `stop` and `status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LxcNetState {
    pub bridge: String,
    pub address: String,
    pub nft_table: String,
    pub pid_file: PathBuf,
    pub leases: PathBuf,
    pub hosts_file: PathBuf,
    /// ip_forward was 0 and `start` turned it on.
    pub enabled_forwarding: bool,
}

impl LxcNetState {
    /// The pid file of the process that keeps dnsmasq running.
    pub fn supervisor_pid_file(&self) -> PathBuf {
        self.pid_file.with_file_name("supervisor.pid")
    }
}

/// Runs dnsmasq under a supervisor of its own (`warren-lxc net supervise`, detached): it
/// restarts dnsmasq if it dies (at most 5 times a minute) and stops it when told to (SIGTERM).
/// Returns once dnsmasq answers (its pid file is there).
fn start_supervisor(dns: &warren_net::dnsmasq::DnsmasqConfig, state: &LxcNetState) -> Result<()> {
    let (program, args) = dns.foreground_command().map_err(|e| anyhow!("{e}"))?;
    let log = state.pid_file.with_file_name("dnsmasq.log");
    let log_file =
        std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
    let me = std::env::current_exe().context("find warren-lxc's own binary")?;
    let mut cmd = std::process::Command::new(me);
    cmd.arg("net-supervise")
        .arg(state.supervisor_pid_file())
        .arg(&program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().context("start the dnsmasq supervisor")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if warren_net::dnsmasq::running_pid(&dns.pid_file).is_some() {
            return Ok(());
        }
        if let Ok(Some(st)) = child.try_wait() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "dnsmasq for {} did not start ({st}): {}",
                dns.bridge,
                text.lines().last().unwrap_or("no message").trim()
            );
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "dnsmasq for {} did not start within 5 s (see {})",
                dns.bridge,
                log.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn stop_supervisor(pid_file: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    else {
        return;
    };
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.contains("net-supervise"))
    };
    if alive(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    let _ = std::fs::remove_file(pid_file);
}

/// The supervisor's body: keep `program args` (dnsmasq in the foreground) running until SIGTERM.
pub fn supervise(pid_file: &Path, program: &Path, args: &[String]) -> Result<i32> {
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::SignalFd;
    let _ = nix::unistd::setsid();
    std::fs::write(pid_file, format!("{}\n", std::process::id()))
        .with_context(|| format!("write {}", pid_file.display()))?;
    let mut mask = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD] {
        mask.add(s);
    }
    mask.thread_block().context("block signals")?;
    let signals = SignalFd::new(&mask).context("signalfd")?;
    let mut restarts: Vec<std::time::Instant> = Vec::new();
    loop {
        // (std resets the signal mask in the child)
        let mut child = std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("run {}", program.display()))?;
        eprintln!("warren-lxc net: dnsmasq started, pid {}", child.id());
        loop {
            let Ok(Some(info)) = signals.read_signal() else {
                continue;
            };
            if info.ssi_signo == Signal::SIGCHLD as u32 {
                if let Ok(Some(status)) = child.try_wait() {
                    eprintln!("warren-lxc net: dnsmasq exited ({status})");
                    break;
                }
                continue;
            }
            // SIGTERM or SIGINT: stop dnsmasq and go
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                Signal::SIGTERM,
            );
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while child.try_wait().ok().flatten().is_none() {
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let _ = std::fs::remove_file(pid_file);
            return Ok(0);
        }
        let now = std::time::Instant::now();
        restarts.retain(|t| now.duration_since(*t) < std::time::Duration::from_secs(60));
        if restarts.len() >= 5 {
            eprintln!("warren-lxc net: dnsmasq died 5 times within a minute; giving up");
            let _ = std::fs::remove_file(pid_file);
            return Ok(1);
        }
        restarts.push(now);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Where the state of bridge `bridge` is kept.
pub fn state_dir(run_dir: &Path, bridge: &str) -> PathBuf {
    run_dir.join(bridge)
}

fn nft_table_name(bridge: &str) -> String {
    format!("warren_lxcnet_{}", bridge.replace(['-', '.'], "_"))
}

/// The NAT and filter rules of the bridge's table.
pub fn ruleset(c: &LxcNetConfig, table: &str) -> String {
    let br = &c.bridge;
    let net = c.network;
    let mut s = format!(
        "table ip {table} {{\n\
         \x20 chain input {{\n    type filter hook input priority 0; policy accept;\n    \
         iifname \"{br}\" udp dport {{ 53, 67 }} accept\n    iifname \"{br}\" tcp dport 53 accept\n  }}\n\
         \x20 chain forward {{\n    type filter hook forward priority 0; policy accept;\n    \
         iifname \"{br}\" accept\n    oifname \"{br}\" ct state related,established accept\n  }}\n\
         \x20 chain postrouting {{\n    type nat hook postrouting priority 100; policy accept;\n\
         {masquerade}  }}\n}}\n",
        masquerade = if c.nat {
            format!("    ip saddr {net} ip daddr != {net} masquerade\n")
        } else {
            String::new()
        }
    );
    if let (Some(v6), true) = (c.ipv6, c.ipv6_nat) {
        let v6net = Cidr {
            addr: v6.addr,
            prefix: v6.prefix,
        };
        s.push_str(&format!(
            "table ip6 {table} {{\n  chain postrouting {{\n    type nat hook postrouting priority 100; policy accept;\n    \
             ip6 saddr {v6net} ip6 daddr != {v6net} masquerade\n  }}\n}}\n"
        ));
    }
    s
}

/// Sets the bridge up: bridge, addresses, NAT, dnsmasq. `upstream`: dnsmasq forwards DNS to the
/// host's resolvers (tests turn that off). Nothing is left behind when a step fails.
pub fn start(
    c: &LxcNetConfig,
    run_dir: &Path,
    leases_dir: &Path,
    upstream: bool,
) -> Result<LxcNetState> {
    if !c.use_bridge {
        bail!("USE_LXC_BRIDGE is false: nothing to start");
    }
    let dir = state_dir(run_dir, &c.bridge);
    let state_file = dir.join("state.json");
    let mut nl = Netlink::open().map_err(|e| anyhow!("{e}"))?;
    if state_file.exists() {
        bail!(
            "{} is already started by warren-lxc net (state in {})",
            c.bridge,
            dir.display()
        );
    }
    if nl.link_index(&c.bridge).is_ok() {
        bail!(
            "{} exists and was not made by warren-lxc net (is LXC's lxc-net running?): nothing changed",
            c.bridge
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let table = nft_table_name(&c.bridge);
    let state = LxcNetState {
        bridge: c.bridge.clone(),
        address: format!("{}/{}", c.addr, c.network.prefix),
        nft_table: table.clone(),
        pid_file: dir.join("dnsmasq.pid"),
        leases: leases_dir.join(format!("dnsmasq.{}.leases", c.bridge)),
        hosts_file: dir.join("dhcp-hosts"),
        enabled_forwarding: false,
    };
    let mut undo = StartUndo {
        state: Some(state.clone()),
        dir: dir.clone(),
    };
    nl.create_bridge(&c.bridge).map_err(|e| anyhow!("{e}"))?;
    let idx = nl.link_index(&c.bridge).map_err(|e| anyhow!("{e}"))?;
    nl.add_address(
        idx,
        Cidr {
            addr: IpAddr::V4(c.addr),
            prefix: c.network.prefix,
        },
    )
    .map_err(|e| anyhow!("{e}"))?;
    if let Some(v6) = c.ipv6 {
        nl.add_address(idx, v6).map_err(|e| anyhow!("{e}"))?;
    }
    nl.set_up(idx).map_err(|e| anyhow!("{e}"))?;
    warren_net::nft::load(&ruleset(c, &table)).map_err(|e| anyhow!("{e}"))?;
    let mut state = state;
    let fwd = Path::new("/proc/sys/net/ipv4/ip_forward");
    if std::fs::read_to_string(fwd)
        .map(|v| v.trim() == "0")
        .unwrap_or(false)
    {
        std::fs::write(fwd, "1").context("enable IPv4 forwarding")?;
        state.enabled_forwarding = true;
        undo.state = Some(state.clone());
    }
    let dns = warren_net::dnsmasq::DnsmasqConfig {
        bridge: c.bridge.clone(),
        listen: IpAddr::V4(c.addr),
        listen_v6: c.ipv6.and_then(|v| match v.addr {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }),
        dhcp_range: c.dhcp_range.clone(),
        dhcp_max: c.dhcp_max,
        leases: state.leases.clone(),
        pid_file: state.pid_file.clone(),
        hosts_file: state.hosts_file.clone(),
        conf_file: c.dhcp_confile.clone(),
        domain: c.domain.clone(),
        ping: c.dhcp_ping,
        upstream,
    };
    start_supervisor(&dns, &state)?;
    std::fs::write(&state_file, serde_json::to_vec_pretty(&state)?)
        .with_context(|| format!("write {}", state_file.display()))?;
    undo.state = None;
    Ok(state)
}

/// Removes what a failed start made.
struct StartUndo {
    state: Option<LxcNetState>,
    dir: PathBuf,
}

impl Drop for StartUndo {
    fn drop(&mut self) {
        if let Some(s) = self.state.take() {
            teardown(&s);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn teardown(s: &LxcNetState) {
    stop_supervisor(&s.supervisor_pid_file());
    warren_net::dnsmasq::stop(&s.pid_file);
    let _ = warren_net::nft::delete_table("ip", &s.nft_table);
    let _ = warren_net::nft::delete_table("ip6", &s.nft_table);
    if let Ok(mut nl) = Netlink::open() {
        if let Ok(i) = nl.link_index(&s.bridge) {
            let _ = nl.delete_link(i);
        }
    }
    if s.enabled_forwarding {
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", "0");
    }
}

/// The recorded state of `bridge`, if `start` made it.
pub fn load_state(run_dir: &Path, bridge: &str) -> Result<Option<LxcNetState>> {
    let f = state_dir(run_dir, bridge).join("state.json");
    match std::fs::read(&f) {
        Ok(b) => Ok(Some(
            serde_json::from_slice(&b).with_context(|| format!("read {}", f.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("read {}: {e}", f.display())),
    }
}

/// Removes what `start` made for `bridge` (an error when it made nothing).
pub fn stop(run_dir: &Path, bridge: &str) -> Result<()> {
    let Some(s) = load_state(run_dir, bridge)? else {
        bail!("{bridge} was not started by warren-lxc net: nothing to stop");
    };
    teardown(&s);
    std::fs::remove_dir_all(state_dir(run_dir, bridge))
        .with_context(|| format!("remove {}", state_dir(run_dir, bridge).display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = parse_config("", Path::new("x")).expect("empty");
        assert_eq!(c, LxcNetConfig::default());
        let c = parse_config(
            "# lxc-net\nUSE_LXC_BRIDGE=\"true\"\nLXC_BRIDGE=\"br7\"\nLXC_ADDR=\"10.7.0.1\"\nLXC_NETMASK=\"255.255.0.0\"\n\
             LXC_NETWORK=\"10.7.0.0/16\"\nLXC_DHCP_RANGE=\"10.7.0.2,10.7.0.99\"\nLXC_DHCP_MAX=\"98\"\nLXC_DOMAIN=\"lxc\"\nLXC_DHCP_PING=false\n",
            Path::new("x"),
        )
        .expect("parse");
        assert_eq!(c.bridge, "br7");
        assert_eq!(c.network.prefix, 16);
        assert_eq!(c.dhcp_max, 98);
        assert_eq!(c.domain.as_deref(), Some("lxc"));
        assert!(!c.dhcp_ping);
    }

    #[test]
    fn bad_values_name_file_line_and_variable() {
        let e = parse_config(
            "LXC_BRIDGE=lxcbr0\nLXC_ADDR=\"10.0.3.300\"\n",
            Path::new("/etc/default/lxc-net"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("/etc/default/lxc-net:2: LXC_ADDR:"), "{e}");
        let e = parse_config("LXC_NETMASK=255.0.255.0\n", Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("contiguous"), "{e}");
        let e = parse_config("LXC_ADDR=10.9.0.1\n", Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not in LXC_NETWORK"), "{e}");
        let e = parse_config("LXC_DHCP_RANGE=10.0.3.2\n", Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("FIRST,LAST"), "{e}");
    }

    #[test]
    fn ipv6_settings() {
        let c = parse_config(
            "LXC_IPV6_ADDR=\"fd42:1::1\"\nLXC_IPV6_MASK=\"64\"\nLXC_IPV6_NETWORK=\"fd42:1::/64\"\nLXC_IPV6_NAT=\"true\"\n",
            Path::new("f"),
        )
        .expect("parse");
        assert_eq!(
            c.ipv6.map(|v| v.to_string()).as_deref(),
            Some("fd42:1::1/64")
        );
        assert!(c.ipv6_nat);
        let r = ruleset(&c, "t");
        assert!(r.contains("table ip6 t") && r.contains("masquerade"), "{r}");
        let e = parse_config("LXC_IPV6_ADDR=\"fd42::zz\"\n", Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("f:1: LXC_IPV6_ADDR"), "{e}");
    }

    #[test]
    fn the_nat_rule_covers_the_subnet() {
        let r = ruleset(&LxcNetConfig::default(), "t");
        assert!(
            r.contains("ip saddr 10.0.3.0/24 ip daddr != 10.0.3.0/24 masquerade"),
            "{r}"
        );
        assert!(
            r.contains("iifname \"lxcbr0\" udp dport { 53, 67 } accept"),
            "{r}"
        );
    }
}
