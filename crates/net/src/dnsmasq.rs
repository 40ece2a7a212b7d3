//! dnsmasq for a bridge: DHCP (leases, static leases by name) and DNS on the bridge's address
//! only, as LXC's lxc-net runs it. It runs as a daemon with a pid file; stopping it is checked
//! against that file's process really being our dnsmasq.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::NetError;

/// What one dnsmasq instance serves.
#[derive(Debug, Clone)]
pub struct DnsmasqConfig {
    pub bridge: String,
    pub listen: std::net::IpAddr,
    /// The bridge's IPv6 address, when it has one: dnsmasq listens there too and sends router
    /// advertisements (SLAAC), as lxc-net does with LXC_IPV6_ADDR.
    pub listen_v6: Option<std::net::Ipv6Addr>,
    /// `first,last` of the DHCP range.
    pub dhcp_range: String,
    pub dhcp_max: u32,
    pub leases: PathBuf,
    pub pid_file: PathBuf,
    /// `dhcp-host` lines (`NAME,IP`), one per line, for static leases by container name.
    pub hosts_file: PathBuf,
    /// Extra dnsmasq configuration (LXC_DHCP_CONFILE).
    pub conf_file: Option<PathBuf>,
    pub domain: Option<String>,
    /// Ping an address before leasing it (LXC_DHCP_PING).
    pub ping: bool,
    /// Forward DNS queries upstream (the host's resolv.conf); off: answer local names only.
    pub upstream: bool,
}

impl DnsmasqConfig {
    /// The command line.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            format!(
                "--conf-file={}",
                self.conf_file
                    .as_deref()
                    .unwrap_or(Path::new("/dev/null"))
                    .display()
            ),
            "--strict-order".into(),
            "--bind-interfaces".into(),
            format!("--pid-file={}", self.pid_file.display()),
            format!("--listen-address={}", self.listen),
            format!("--dhcp-range={}", self.dhcp_range),
            format!("--dhcp-lease-max={}", self.dhcp_max),
            "--dhcp-no-override".into(),
            "--except-interface=lo".into(),
            format!("--interface={}", self.bridge),
            format!("--dhcp-leasefile={}", self.leases.display()),
            format!("--dhcp-hostsfile={}", self.hosts_file.display()),
            "--dhcp-authoritative".into(),
        ];
        if let Some(v6) = self.listen_v6 {
            a.push(format!("--listen-address={v6}"));
            a.push("--enable-ra".into());
            a.push(format!("--dhcp-range={v6},ra-only"));
        }
        if let Some(d) = &self.domain {
            a.push(format!("--domain={d}"));
            a.push(format!("--local=/{d}/"));
        }
        if !self.ping {
            a.push("--no-ping".into());
        }
        if !self.upstream {
            a.push("--no-resolv".into());
        }
        if nix_user_exists("dnsmasq") {
            a.push("--user=dnsmasq".into());
        }
        a
    }

    /// Prepares what dnsmasq needs on disk (lease directory, hosts file) and returns the
    /// program and arguments to run it in the foreground, for a supervisor.
    pub fn foreground_command(&self) -> Result<(PathBuf, Vec<String>), NetError> {
        if let Some(dir) = self.leases.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if !self.hosts_file.exists() {
            std::fs::write(&self.hosts_file, "")
                .map_err(|e| NetError::Invalid(format!("{}: {e}", self.hosts_file.display())))?;
        }
        let mut args = self.args();
        args.push("--keep-in-foreground".into());
        // (its messages go to the supervisor's log rather than syslog)
        args.push("--log-facility=-".into());
        Ok((dnsmasq_binary()?, args))
    }

    /// Starts the daemon; returns its pid (from the pid file).
    pub fn start(&self) -> Result<i32, NetError> {
        if let Some(dir) = self.leases.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if !self.hosts_file.exists() {
            std::fs::write(&self.hosts_file, "")
                .map_err(|e| NetError::Invalid(format!("{}: {e}", self.hosts_file.display())))?;
        }
        let out = Command::new(dnsmasq_binary()?)
            .args(self.args())
            .output()
            .map_err(|e| NetError::Invalid(format!("run dnsmasq: {e}")))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(NetError::Invalid(format!(
                "dnsmasq for {}: {}",
                self.bridge,
                err.lines().last().unwrap_or("failed").trim()
            )));
        }
        running_pid(&self.pid_file).ok_or_else(|| {
            NetError::Invalid(format!("dnsmasq for {} did not stay up", self.bridge))
        })
    }
}

fn nix_user_exists(name: &str) -> bool {
    std::fs::read_to_string("/etc/passwd")
        .map(|p| p.lines().any(|l| l.split(':').next() == Some(name)))
        .unwrap_or(false)
}

fn dnsmasq_binary() -> Result<PathBuf, NetError> {
    for d in ["/usr/sbin", "/usr/bin", "/sbin"] {
        let p = Path::new(d).join("dnsmasq");
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(NetError::Invalid(
        "dnsmasq is not installed: apt-get install dnsmasq-base".into(),
    ))
}

/// The pid in `pid_file` if that process is alive and is a dnsmasq.
pub fn running_pid(pid_file: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (comm.trim() == "dnsmasq").then_some(pid)
}

/// Stops the dnsmasq of `pid_file` (SIGTERM, then SIGKILL after a second) and removes the file.
pub fn stop(pid_file: &Path) {
    if let Some(pid) = running_pid(pid_file) {
        signal(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while running_pid(pid_file).is_some() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if running_pid(pid_file).is_some() {
            signal(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    let _ = std::fs::remove_file(pid_file);
}

fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}
