//! Managed networks: bridges warrend makes, each with dnsmasq for DHCP and DNS and NAT in an
//! nftables table of its own, through warren-lxc's lxc-net (`warren-lxc net start|stop` on a
//! settings file warrend writes per network). Their config (`ipv4.address` with `auto` picking a
//! subnet no route uses, `ipv4.nat`, `ipv4.dhcp.ranges`, `dns.domain`, `ipv6.address`,
//! `ipv6.nat`), leases (dnsmasq's, and the static ones nic devices ask for with `ipv4.address`),
//! and the nic devices on them (`network=NAME`).

use crate::db::{Instance, Network, Profile};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use warren_net::Cidr;

/// Config keys a managed bridge has, and what they take.
pub fn validate(config: &Value) -> Result<(), String> {
    let Some(map) = config.as_object() else {
        return Err("config must be an object".into());
    };
    for (k, v) in map {
        let Some(value) = v.as_str() else {
            return Err(format!("{k}: values are strings"));
        };
        let bool_ok = matches!(value, "" | "true" | "false");
        let ok = match k.as_str() {
            _ if k.starts_with("user.") => true,
            "ipv4.address" => {
                matches!(value, "auto" | "none" | "") || ipv4_gateway(value).is_some()
            }
            "ipv6.address" => matches!(value, "auto" | "none" | "") || ipv6_gateway(value).is_some(),
            "ipv4.nat" | "ipv6.nat" | "ipv4.dhcp" => bool_ok,
            "ipv4.dhcp.ranges" => value.is_empty() || dhcp_range(value).is_some(),
            "dns.domain" => {
                !value.is_empty()
                    && value.len() <= 253
                    && value
                        .split('.')
                        .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            }
            _ => {
                return Err(format!(
                    "Invalid network configuration key: {k} (warren has ipv4.address, ipv4.nat, ipv4.dhcp.ranges, dns.domain, ipv6.address, ipv6.nat, user.*)"
                ))
            }
        };
        if !ok {
            return Err(format!("Invalid value for network {k}: {value}"));
        }
    }
    if map.get("ipv4.dhcp").and_then(Value::as_str) == Some("false") {
        return Err("ipv4.dhcp=false: warren's bridges always serve DHCP".into());
    }
    if let (Some(range), Some(gw)) = (
        map.get("ipv4.dhcp.ranges")
            .and_then(Value::as_str)
            .and_then(dhcp_range),
        map.get("ipv4.address")
            .and_then(Value::as_str)
            .and_then(ipv4_gateway),
    ) {
        if !in_subnet(gw, range.0) || !in_subnet(gw, range.1) {
            return Err("ipv4.dhcp.ranges is not inside ipv4.address's subnet".into());
        }
    }
    Ok(())
}

/// `10.1.2.1/24`: the bridge's address with its prefix (a host address, not the network's).
fn ipv4_gateway(v: &str) -> Option<(Ipv4Addr, u8)> {
    let c: Cidr = v.parse().ok()?;
    let IpAddr::V4(a) = c.addr else { return None };
    let host = u32::from(a) & !mask(c.prefix);
    (c.prefix >= 8 && c.prefix <= 30 && host != 0 && host != !mask(c.prefix))
        .then_some((a, c.prefix))
}

fn ipv6_gateway(v: &str) -> Option<Cidr> {
    let c: Cidr = v.parse().ok()?;
    (c.addr.is_ipv6() && c.prefix >= 48 && c.prefix <= 124).then_some(c)
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn in_subnet((gw, prefix): (Ipv4Addr, u8), ip: Ipv4Addr) -> bool {
    u32::from(gw) & mask(prefix) == u32::from(ip) & mask(prefix)
}

/// `A-B` (Incus's form; one range).
fn dhcp_range(v: &str) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let (a, b) = v.split_once('-')?;
    let (a, b): (Ipv4Addr, Ipv4Addr) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (u32::from(a) <= u32::from(b)).then_some((a, b))
}

/// The IPv4 subnets in use on this host: its addresses' and its routes'.
fn subnets_in_use() -> Vec<(Ipv4Addr, u8)> {
    let mut out = Vec::new();
    if let Ok(mut nl) = warren_net::Netlink::open() {
        for c in nl.addresses(None).unwrap_or_default() {
            if let IpAddr::V4(a) = c.addr {
                out.push((a, c.prefix));
            }
        }
    }
    // /proc/net/route: destination and mask as little-endian hex
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(dst), Some(m)) = (f.get(1), f.get(7)) else {
            continue;
        };
        let (Ok(dst), Ok(m)) = (u32::from_str_radix(dst, 16), u32::from_str_radix(m, 16)) else {
            continue;
        };
        if m != 0 {
            out.push((Ipv4Addr::from(dst.swap_bytes()), m.count_ones() as u8));
        }
    }
    out
}

fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let p = a.1.min(b.1);
    u32::from(a.0) & mask(p) == u32::from(b.0) & mask(p)
}

/// A free `10.R.R.1/24`: no address, route or other network of this host in it.
fn pick_ipv4(taken: &[(Ipv4Addr, u8)]) -> Option<String> {
    let mut used = subnets_in_use();
    used.extend_from_slice(taken);
    let mut seed = [0u8; 64];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut seed);
    }
    seed.chunks(2).find_map(|b| {
        let candidate = (Ipv4Addr::new(10, b[0], b[1], 1), 24);
        (!used.iter().any(|u| overlaps(*u, candidate))).then(|| format!("{}/24", candidate.0))
    })
}

/// A random unique-local `fd42:xxxx:xxxx:xxxx::1/64`.
fn pick_ipv6() -> String {
    let mut b = [0u8; 6];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    format!(
        "fd42:{:02x}{:02x}:{:02x}{:02x}:{:02x}{:02x}::1/64",
        b[0], b[1], b[2], b[3], b[4], b[5]
    )
}

/// The config as created: `auto` (and a missing ipv4.address) replaced by a picked subnet, NAT on
/// for it, as Incus does.
pub fn fill_defaults(config: &mut Value, others: &[Network]) -> Result<(), String> {
    let taken: Vec<(Ipv4Addr, u8)> = others
        .iter()
        .filter_map(|n| n.config["ipv4.address"].as_str().and_then(ipv4_gateway))
        .collect();
    let Some(map) = config.as_object_mut() else {
        return Err("config must be an object".into());
    };
    let v4 = map
        .get("ipv4.address")
        .and_then(Value::as_str)
        .unwrap_or("auto")
        .to_string();
    if v4 == "auto" || v4.is_empty() {
        let picked = pick_ipv4(&taken).ok_or("no free 10.x.y.0/24 subnet on this host")?;
        map.insert("ipv4.address".into(), json!(picked));
        map.entry("ipv4.nat").or_insert(json!("true"));
    } else if v4 == "none" {
        return Err("ipv4.address=none: warren's bridges need an IPv4 subnet".into());
    } else if let Some(gw) = ipv4_gateway(&v4) {
        if subnets_in_use()
            .iter()
            .chain(&taken)
            .any(|u| overlaps(*u, gw))
        {
            return Err(format!(
                "ipv4.address {v4} overlaps a subnet already in use on this host"
            ));
        }
    }
    if map.get("ipv6.address").and_then(Value::as_str) == Some("auto") {
        map.insert("ipv6.address".into(), json!(pick_ipv6()));
        map.entry("ipv6.nat").or_insert(json!("true"));
    }
    Ok(())
}

fn net_dir(dir: &Path) -> PathBuf {
    dir.join("networks")
}

fn run_dir(dir: &Path) -> PathBuf {
    net_dir(dir).join("run")
}

fn settings_file(dir: &Path, name: &str) -> PathBuf {
    net_dir(dir).join(format!("{name}.lxc-net"))
}

fn leases_file(dir: &Path, name: &str) -> PathBuf {
    net_dir(dir).join(format!("dnsmasq.{name}.leases"))
}

fn hosts_file(dir: &Path, name: &str) -> PathBuf {
    run_dir(dir).join(name).join("dhcp-hosts")
}

/// The network as lxc-net settings.
fn settings(n: &Network) -> Result<String, String> {
    let get = |k: &str| n.config.get(k).and_then(Value::as_str).unwrap_or("");
    let (gw, prefix) = ipv4_gateway(get("ipv4.address")).ok_or("the network has no IPv4 subnet")?;
    let net = Ipv4Addr::from(u32::from(gw) & mask(prefix));
    let (first, last) = match dhcp_range(get("ipv4.dhcp.ranges")) {
        Some(r) => r,
        None => {
            // the whole subnet but the gateway, as Incus hands out
            let base = u32::from(net);
            let top = base | !mask(prefix);
            let first = if base + 1 == u32::from(gw) {
                base + 2
            } else {
                base + 1
            };
            (Ipv4Addr::from(first), Ipv4Addr::from(top - 1))
        }
    };
    let mut s = format!(
        "USE_LXC_BRIDGE=true\nLXC_BRIDGE={}\nLXC_ADDR={gw}\nLXC_NETMASK={}\nLXC_NETWORK={net}/{prefix}\nLXC_DHCP_RANGE={first},{last}\nLXC_DHCP_MAX={}\n",
        n.name,
        Ipv4Addr::from(mask(prefix)),
        u32::from(last) - u32::from(first) + 1
    );
    if !get("dns.domain").is_empty() {
        s.push_str(&format!("LXC_DOMAIN={}\n", get("dns.domain")));
    }
    if let Some(v6) = ipv6_gateway(get("ipv6.address")) {
        s.push_str(&format!(
            "LXC_IPV6_ADDR={}\nLXC_IPV6_MASK={}\nLXC_IPV6_NAT={}\n",
            v6.addr,
            v6.prefix,
            get("ipv6.nat") == "true"
        ));
    }
    Ok(s)
}

fn lxc_net(dir: &Path, name: &str, action: &str, extra: &[&str]) -> Result<(), String> {
    let out = Command::new(crate::instances::warren_lxc())
        .args(["net", action, "--config"])
        .arg(settings_file(dir, name))
        .arg("--run-dir")
        .arg(run_dir(dir))
        .arg("--leases-dir")
        .arg(net_dir(dir))
        .args(extra)
        .output()
        .map_err(|e| format!("warren-lxc net: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err
            .lines()
            .last()
            .unwrap_or("warren-lxc net failed")
            .trim_start_matches("error: ")
            .to_string())
    }
}

/// Whether warrend's bridge `name` is up (its lxc-net state is there and the link exists).
pub fn is_up(dir: &Path, name: &str) -> bool {
    run_dir(dir).join(name).join("state.json").is_file()
        && Path::new("/sys/class/net").join(name).exists()
}

/// Brings the bridge up: bridge, addresses, NAT, dnsmasq; static leases written.
pub fn start(dir: &Path, n: &Network, static_leases: &[(String, String)]) -> Result<(), String> {
    std::fs::create_dir_all(net_dir(dir)).map_err(|e| e.to_string())?;
    std::fs::write(settings_file(dir, &n.name), settings(n)?).map_err(|e| e.to_string())?;
    if run_dir(dir).join(&n.name).join("state.json").is_file() {
        // left from before a reboot or a crash: cleared, then made again
        let _ = lxc_net(dir, &n.name, "stop", &[]);
    }
    let mut extra = Vec::new();
    if n.config.get("ipv4.nat").and_then(Value::as_str) != Some("true") {
        extra.push("--no-nat");
    }
    // for tests that must not reach off the machine: dnsmasq forwards no query
    if std::env::var_os("WARREND_DNS_NO_UPSTREAM").is_some() {
        extra.push("--no-upstream");
    }
    lxc_net(dir, &n.name, "start", &extra)?;
    write_static_leases(dir, &n.name, static_leases);
    Ok(())
}

pub fn stop(dir: &Path, name: &str) -> Result<(), String> {
    let r = lxc_net(dir, name, "stop", &[]);
    let _ = std::fs::remove_file(settings_file(dir, name));
    let _ = std::fs::remove_file(leases_file(dir, name));
    r
}

/// dnsmasq's dhcp-hostsfile (`hwaddr,address` lines), re-read on SIGHUP.
pub fn write_static_leases(dir: &Path, name: &str, leases: &[(String, String)]) {
    let text: String = leases
        .iter()
        .map(|(mac, ip)| format!("{mac},{ip}\n"))
        .collect();
    let file = hosts_file(dir, name);
    if std::fs::read_to_string(&file).is_ok_and(|t| t == text) {
        return;
    }
    if std::fs::write(&file, text).is_ok() {
        let pid_file = run_dir(dir).join(name).join("dnsmasq.pid");
        if let Some(pid) = warren_net::dnsmasq::running_pid(&pid_file) {
            let sent = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGHUP,
            );
            if sent.is_ok() {
                wait_reloaded(pid);
            }
        }
    }
}

/// Waits (up to a second) until dnsmasq `pid` has taken its SIGHUP and re-read its files: the
/// signal no longer pending, and dnsmasq asleep again (after the signal it runs until the
/// re-read is done). A container started right after a static lease was set must find it
/// there when it asks for an address.
fn wait_reloaded(pid: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let status = format!("/proc/{pid}/status");
    let hup = 1u64 << (libc::SIGHUP - 1);
    loop {
        let Ok(text) = std::fs::read_to_string(&status) else {
            return;
        };
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(str::trim)
        };
        let pending = |key: &str| {
            field(key)
                .and_then(|v| u64::from_str_radix(v, 16).ok())
                .unwrap_or(0)
        };
        let delivered = (pending("SigPnd:") | pending("ShdPnd:")) & hup == 0;
        let asleep = field("State:").is_some_and(|s| s.starts_with('S'));
        if (delivered && asleep) || std::time::Instant::now() > deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// The nic devices of `inst` (expanded) on network `name`: (device name, its config).
fn nics_on<'a>(devices: &'a Value, name: &str) -> Vec<(&'a String, &'a Value)> {
    devices
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, d)| {
                    d.get("type").and_then(Value::as_str) == Some("nic")
                        && d.get("network").and_then(Value::as_str) == Some(name)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// (hwaddr, address) of every nic with a static `ipv4.address` on network `name`.
pub fn static_leases(
    profiles: &[Profile],
    instances: &[Instance],
    name: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in instances {
        let devices = crate::instances::expanded_devices(profiles, i);
        for (dev, nic) in nics_on(&devices, name) {
            let ip = nic
                .get("ipv4.address")
                .and_then(Value::as_str)
                .unwrap_or("");
            let mac = crate::instances::nic_hwaddr(i, dev, nic);
            if !ip.is_empty() && !mac.contains('x') {
                out.push((mac, ip.to_string()));
            }
        }
    }
    out
}

/// Instances and profiles with a nic on network `name`, as API paths.
pub fn used_by(profiles: &[Profile], instances: &[Instance], name: &str) -> Vec<String> {
    let mut out: Vec<String> = profiles
        .iter()
        .filter(|p| !nics_on(&p.devices, name).is_empty())
        .map(|p| crate::db::project_url(&p.project, &format!("/1.0/profiles/{}", p.name)))
        .collect();
    out.extend(
        instances
            .iter()
            .filter(|i| !nics_on(&crate::instances::expanded_devices(profiles, i), name).is_empty())
            .map(|i| i.url()),
    );
    out
}

/// A nic's `ipv4.address` must be a host address in the network's subnet, not its gateway.
pub fn check_static_address(n: &Network, ip: &str) -> Result<(), String> {
    let gw = n.config["ipv4.address"]
        .as_str()
        .and_then(ipv4_gateway)
        .ok_or("the network has no IPv4 subnet")?;
    let a: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("ipv4.address \"{ip}\" is not an IPv4 address"))?;
    let host = u32::from(a) & !mask(gw.1);
    if !in_subnet(gw, a) || a == gw.0 || host == 0 || host == !mask(gw.1) {
        return Err(format!(
            "ipv4.address {ip} is not a free host address of {}/{} (gateway {})",
            Ipv4Addr::from(u32::from(gw.0) & mask(gw.1)),
            gw.1,
            gw.0
        ));
    }
    Ok(())
}

pub fn network_json(n: &Network, used_by: Vec<String>, up: bool) -> Value {
    json!({"config": n.config, "description": n.description, "name": n.name, "type": n.kind,
           "used_by": used_by, "managed": true, "status": if up { "Created" } else { "Errored" },
           "locations": ["none"], "project": "default"})
}

/// GET /1.0/networks/<name>/leases: dnsmasq's dynamic leases, and the static ones.
pub fn leases(
    dir: &Path,
    name: &str,
    statics: &[(String, String)],
    instances: &[Instance],
) -> Value {
    let mut out = Vec::new();
    let text = std::fs::read_to_string(leases_file(dir, name)).unwrap_or_default();
    // "expiry hwaddr address hostname client-id"
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let kind = if statics.iter().any(|(m, _)| m.eq_ignore_ascii_case(f[1])) {
            "static"
        } else {
            "dynamic"
        };
        let owner = instance_by_mac(instances, f[1]);
        let hostname = match (&owner, f[3]) {
            (Some(i), "*") => i.api_name().to_string(),
            (_, h) if h != "*" => h.to_string(),
            _ => String::new(),
        };
        let project = owner.map_or("default", |i| i.project.as_str());
        out.push(
            json!({"hostname": hostname, "hwaddr": f[1], "address": f[2], "type": kind,
                        "location": "none", "project": project}),
        );
    }
    for (mac, ip) in statics {
        if !out.iter().any(|l| {
            l["hwaddr"]
                .as_str()
                .is_some_and(|m| m.eq_ignore_ascii_case(mac))
        }) {
            let owner = instance_by_mac(instances, mac);
            out.push(
                json!({"hostname": owner.map(Instance::api_name).unwrap_or_default(),
                            "hwaddr": mac, "address": ip, "type": "static", "location": "none",
                            "project": owner.map_or("default", |i| i.project.as_str())}),
            );
        }
    }
    json!(out)
}

fn instance_by_mac<'a>(instances: &'a [Instance], mac: &str) -> Option<&'a Instance> {
    instances.iter().find(|i| {
        i.config.as_object().is_some_and(|c| {
            c.iter().any(|(k, v)| {
                k.starts_with("volatile.")
                    && k.ends_with(".hwaddr")
                    && v.as_str().is_some_and(|m| m.eq_ignore_ascii_case(mac))
            })
        })
    })
}

/// GET /1.0/networks/<name>/state: the bridge as the host sees it.
pub fn state(name: &str) -> Value {
    let base = Path::new("/sys/class/net").join(name);
    let read = |f: &str| {
        std::fs::read_to_string(base.join(f))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let stat = |f: &str| read(&format!("statistics/{f}")).parse::<u64>().unwrap_or(0);
    let mut addresses = Vec::new();
    if let Ok(mut nl) = warren_net::Netlink::open() {
        if let Ok(idx) = nl.link_index(name) {
            for c in nl.addresses(Some(idx)).unwrap_or_default() {
                addresses.push(json!({"family": if c.addr.is_ipv4() { "inet" } else { "inet6" },
                                      "address": c.addr.to_string(), "netmask": c.prefix.to_string(),
                                      "scope": "global"}));
            }
        }
    }
    json!({"addresses": addresses,
           "counters": {"bytes_received": stat("rx_bytes"), "bytes_sent": stat("tx_bytes"),
                        "packets_received": stat("rx_packets"), "packets_sent": stat("tx_packets")},
           "hwaddr": read("address"), "mtu": read("mtu").parse::<u64>().unwrap_or(0),
           "state": if read("operstate") == "down" { "down" } else { "up" }, "type": "broadcast"})
}
