//! The container's network interfaces (`lxc.net.N.*`): checked and planned by the monitor before
//! init exists (so a bad link or address fails the start before anything is made), host sides
//! made by the monitor straight into init's network namespace, container sides configured by
//! init itself (names, MAC, MTU, addresses, routes) before it execs. Everything made lives in or
//! is tied to that namespace: when the container's last process goes, so do its interfaces.

use std::net::IpAddr;

use warren_net::{Cidr, Namespace, NetError, Netlink};

use crate::spec::ContainerSpec;

/// What one interface is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfaceKind {
    /// `veth`: `host` stays here, attached to `bridge` when there is one.
    Veth {
        host: String,
        bridge: Option<String>,
    },
    /// `macvlan` on host link `link`.
    Macvlan { link: String, mode: String },
    /// `phys`: host link `link` moves into the container.
    Phys { link: String },
    /// `vlan`: an 802.1q VLAN `id` on host link `link`.
    Vlan { link: String, id: u16 },
    /// `ipvlan` on host link `link`.
    Ipvlan {
        link: String,
        mode: String,
        isolation: String,
    },
}

/// A gateway: an address, or `dev` (the route goes straight out of the interface).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gateway {
    Addr(IpAddr),
    Device,
}

/// One interface, planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    /// N of `lxc.net.N`.
    pub index: u32,
    pub kind: IfaceKind,
    /// Its name inside the container.
    pub name: String,
    /// The name it arrives with in the container's namespace (a moved host link keeps its own
    /// until init renames it).
    pub arrives_as: String,
    pub hwaddr: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub up: bool,
    pub addresses: Vec<Cidr>,
    pub ipv4_gateway: Option<Gateway>,
    pub ipv6_gateway: Option<Gateway>,
    /// Routes on the host to the container through a veth's host side: `veth.ipv4.route`,
    /// `veth.ipv6.route`, and in router mode the container's own addresses.
    pub host_routes: Vec<Cidr>,
    /// `veth.mode = router`: the host side answers ARP for the container (proxy ARP/NDP).
    pub router: bool,
    /// `l2proxy`: the host link (`lxc.net.N.link`) answers ARP/NDP for the container's
    /// addresses (proxy neighbour entries, removed at stop).
    pub l2proxy: Option<String>,
    /// `script.up` / `script.down`: run on the host after the interface is made / at stop.
    pub script_up: Option<String>,
    pub script_down: Option<String>,
}

impl Iface {
    /// The host device a script is told about: the veth's host side, or the host link used.
    pub fn host_device(&self) -> &str {
        match &self.kind {
            IfaceKind::Veth { host, .. } => host,
            IfaceKind::Macvlan { link, .. }
            | IfaceKind::Phys { link }
            | IfaceKind::Vlan { link, .. }
            | IfaceKind::Ipvlan { link, .. } => link,
        }
    }

    /// `LXC_NET_TYPE`.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            IfaceKind::Veth { .. } => "veth",
            IfaceKind::Macvlan { .. } => "macvlan",
            IfaceKind::Phys { .. } => "phys",
            IfaceKind::Vlan { .. } => "vlan",
            IfaceKind::Ipvlan { .. } => "ipvlan",
        }
    }

    /// `LXC_NET_PARENT`: the bridge or host link.
    pub fn parent(&self) -> Option<&str> {
        match &self.kind {
            IfaceKind::Veth { bridge, .. } => bridge.as_deref(),
            IfaceKind::Macvlan { link, .. }
            | IfaceKind::Phys { link }
            | IfaceKind::Vlan { link, .. }
            | IfaceKind::Ipvlan { link, .. } => Some(link),
        }
    }
}

fn key_err(index: u32, key: &str, msg: impl std::fmt::Display) -> String {
    format!("lxc.net.{index}.{key}: {msg}")
}

/// Checks every interface of `spec` against this host and plans it. `empty` and `none` need
/// nothing made (a new network namespace has its loopback; `none` shares the host's).
pub fn plan(spec: &ContainerSpec) -> Result<Vec<Iface>, String> {
    if !spec.idmaps.is_empty() {
        if let Some(n) = spec.nets.iter().find(|n| n.kind == "none") {
            return Err(key_err(
                n.index,
                "type",
                "\"none\" (the host's network namespace) can't work for an unprivileged container: sysfs can only be mounted by the owner of a network namespace; use veth or empty",
            ));
        }
    }
    let mut out = Vec::new();
    let mut host: Option<Netlink> = None;
    let mut position = 0u32;
    for n in &spec.nets {
        let get = |k: &str| {
            n.keys
                .iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let all = |k: &str| -> Vec<String> {
            n.keys
                .iter()
                .filter(|(key, _)| key == k)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect()
        };
        match n.kind.as_str() {
            "empty" | "none" | "" => continue,
            "veth" | "macvlan" | "phys" | "vlan" | "ipvlan" => {}
            other => {
                return Err(key_err(
                    n.index,
                    "type",
                    format!("unknown interface type \"{other}\" (empty, none, veth, macvlan, ipvlan, phys, vlan)"),
                ))
            }
        }
        if host.is_none() {
            host = Some(Netlink::open().map_err(|e| e.to_string())?);
        }
        let Some(nl) = host.as_mut() else {
            continue;
        };
        let link = get("link");
        let kind = match n.kind.as_str() {
            "veth" => {
                let host_name = match get("veth.pair") {
                    Some(p) => {
                        warren_net::check_name(&p).map_err(|e| key_err(n.index, "veth.pair", e))?;
                        if nl.link_index(&p).is_ok() {
                            return Err(key_err(
                                n.index,
                                "veth.pair",
                                format!("a host interface named \"{p}\" exists already"),
                            ));
                        }
                        p
                    }
                    None => warren_net::random_name("veth"),
                };
                if let Some(b) = &link {
                    match nl.link_kind(b) {
                        Ok(Some(k)) if k == "bridge" || k == "openvswitch" => {}
                        Ok(_) => {
                            return Err(key_err(
                                n.index,
                                "link",
                                format!("\"{b}\" is not a bridge"),
                            ))
                        }
                        Err(NetError::NoSuchLink(_)) => {
                            return Err(key_err(
                                n.index,
                                "link",
                                format!("bridge \"{b}\" does not exist (create it, or start warren-lxc net for lxcbr0)"),
                            ))
                        }
                        Err(e) => return Err(key_err(n.index, "link", e)),
                    }
                }
                IfaceKind::Veth {
                    host: host_name,
                    bridge: link.clone(),
                }
            }
            "macvlan" | "phys" | "vlan" | "ipvlan" => {
                let Some(l) = link.clone() else {
                    return Err(key_err(
                        n.index,
                        "link",
                        format!("a {} interface needs the host interface it uses", n.kind),
                    ));
                };
                match nl.link_index(&l) {
                    Ok(_) => {}
                    Err(NetError::NoSuchLink(_)) => {
                        return Err(key_err(
                            n.index,
                            "link",
                            format!("host interface \"{l}\" does not exist"),
                        ))
                    }
                    Err(e) => return Err(key_err(n.index, "link", e)),
                }
                match n.kind.as_str() {
                    "macvlan" => IfaceKind::Macvlan {
                        link: l,
                        mode: get("macvlan.mode").unwrap_or_else(|| "private".into()),
                    },
                    "vlan" => {
                        let id = get("vlan.id").ok_or_else(|| {
                            key_err(n.index, "vlan.id", "a vlan interface needs its VLAN id")
                        })?;
                        let id = id
                            .parse::<u16>()
                            .ok()
                            .filter(|i| (1..=4094).contains(i))
                            .ok_or_else(|| {
                                key_err(n.index, "vlan.id", format!("\"{id}\" is not 1 to 4094"))
                            })?;
                        IfaceKind::Vlan { link: l, id }
                    }
                    "ipvlan" => IfaceKind::Ipvlan {
                        link: l,
                        mode: get("ipvlan.mode").unwrap_or_else(|| "l3".into()),
                        isolation: get("ipvlan.isolation").unwrap_or_else(|| "bridge".into()),
                    },
                    _ => IfaceKind::Phys { link: l },
                }
            }
            _ => continue,
        };
        let name = match get("name") {
            Some(name) => {
                warren_net::check_name(&name).map_err(|e| key_err(n.index, "name", e))?;
                name
            }
            None => format!("eth{position}"),
        };
        position += 1;
        let arrives_as = match &kind {
            IfaceKind::Phys { link } => link.clone(),
            _ => name.clone(),
        };
        let hwaddr = get("hwaddr")
            .map(|h| warren_net::parse_hwaddr(&h).map_err(|e| key_err(n.index, "hwaddr", e)))
            .transpose()?;
        let mtu = get("mtu")
            .map(|m| {
                m.parse::<u32>().ok().filter(|m| *m >= 68).ok_or_else(|| {
                    key_err(
                        n.index,
                        "mtu",
                        format!("\"{m}\" is not an MTU (68 or more)"),
                    )
                })
            })
            .transpose()?;
        let up = get("flags").is_some_and(|f| f.split(',').any(|x| x.trim() == "up"));
        let mut addresses = Vec::new();
        for (key, v4) in [("ipv4.address", true), ("ipv6.address", false)] {
            for a in all(key) {
                let c: Cidr = a.parse().map_err(|e| key_err(n.index, key, e))?;
                if c.addr.is_ipv4() != v4 {
                    return Err(key_err(
                        n.index,
                        key,
                        format!("\"{a}\" is not an IPv{} address", if v4 { 4 } else { 6 }),
                    ));
                }
                addresses.push(c);
            }
        }
        let gateway = |key: &str, v4: bool, nl: &mut Netlink| -> Result<Option<Gateway>, String> {
            let Some(g) = get(key) else { return Ok(None) };
            match g.as_str() {
                "dev" => Ok(Some(Gateway::Device)),
                "auto" => {
                    // the bridge's own address on the host, as LXC does
                    let Some(b) = &link else {
                        return Err(key_err(n.index, key, "\"auto\" needs lxc.net.N.link (the bridge whose address is the gateway)"));
                    };
                    let idx = nl.link_index(b).map_err(|e| key_err(n.index, key, e))?;
                    let found = nl
                        .addresses(Some(idx))
                        .map_err(|e| key_err(n.index, key, e))?
                        .into_iter()
                        .find(|c| c.addr.is_ipv4() == v4 && !is_link_local(c.addr));
                    match found {
                        Some(c) => Ok(Some(Gateway::Addr(c.addr))),
                        None => Err(key_err(
                            n.index,
                            key,
                            format!(
                                "\"auto\": bridge \"{b}\" has no IPv{} address",
                                if v4 { 4 } else { 6 }
                            ),
                        )),
                    }
                }
                other => {
                    let ip: IpAddr = other.parse().map_err(|_| {
                        key_err(
                            n.index,
                            key,
                            format!("\"{other}\" is not an address, auto or dev"),
                        )
                    })?;
                    if ip.is_ipv4() != v4 {
                        return Err(key_err(
                            n.index,
                            key,
                            format!(
                                "\"{other}\" is not an IPv{} address",
                                if v4 { 4 } else { 6 }
                            ),
                        ));
                    }
                    Ok(Some(Gateway::Addr(ip)))
                }
            }
        };
        let router = match get("veth.mode").as_deref() {
            None | Some("bridge") => false,
            Some("router") if n.kind == "veth" => {
                if link.is_some() {
                    return Err(key_err(n.index, "veth.mode", "router mode routes to the container instead of bridging it: drop lxc.net.N.link"));
                }
                true
            }
            Some("router") => return Err(key_err(n.index, "veth.mode", "only a veth has a mode")),
            Some(other) => {
                return Err(key_err(
                    n.index,
                    "veth.mode",
                    format!("\"{other}\" is not bridge or router"),
                ))
            }
        };
        let mut host_routes = Vec::new();
        for (key, v4) in [("veth.ipv4.route", true), ("veth.ipv6.route", false)] {
            for r in all(key) {
                if n.kind != "veth" {
                    return Err(key_err(n.index, key, "only a veth has host routes"));
                }
                let c: Cidr = r.parse().map_err(|e| key_err(n.index, key, e))?;
                if c.addr.is_ipv4() != v4 {
                    return Err(key_err(
                        n.index,
                        key,
                        format!("\"{r}\" is not an IPv{} route", if v4 { 4 } else { 6 }),
                    ));
                }
                host_routes.push(c);
            }
        }
        if router {
            for a in &addresses {
                host_routes.push(Cidr {
                    addr: a.addr,
                    prefix: if a.addr.is_ipv4() { 32 } else { 128 },
                });
            }
        }
        let ipv4_gateway = gateway("ipv4.gateway", true, nl)?;
        let ipv6_gateway = gateway("ipv6.gateway", false, nl)?;
        let l2proxy = match get("l2proxy").as_deref() {
            None | Some("0") => None,
            Some("1") => {
                let Some(l) = link.clone() else {
                    return Err(key_err(
                        n.index,
                        "l2proxy",
                        "the proxy entries go on lxc.net.N.link: set it",
                    ));
                };
                if let IfaceKind::Ipvlan { mode, .. } = &kind {
                    if mode != "l3s" {
                        return Err(key_err(n.index, "l2proxy", format!("an ipvlan with l2proxy must be in mode l3s (lxc.net.{}.ipvlan.mode = l3s), not {mode}", n.index)));
                    }
                }
                // what LXC requires of the link, checked before anything is made
                let v4 = addresses.iter().any(|a| a.addr.is_ipv4());
                let v6 = addresses.iter().any(|a| a.addr.is_ipv6());
                for (needed, family, knob) in [
                    (v4, "ipv4", "forwarding"),
                    (v6, "ipv6", "proxy_ndp"),
                    (v6, "ipv6", "forwarding"),
                ] {
                    let path = format!("/proc/sys/net/{family}/conf/{l}/{knob}");
                    let on = std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "1");
                    if needed && !on {
                        return Err(key_err(
                            n.index,
                            "l2proxy",
                            format!("needs sysctl net.{family}.conf.{l}.{knob}=1"),
                        ));
                    }
                }
                Some(l)
            }
            Some(other) => {
                return Err(key_err(
                    n.index,
                    "l2proxy",
                    format!("\"{other}\" is not 0 or 1"),
                ))
            }
        };
        out.push(Iface {
            index: n.index,
            kind,
            name,
            arrives_as,
            hwaddr,
            mtu,
            up,
            addresses,
            ipv4_gateway,
            ipv6_gateway,
            script_up: get("script.up"),
            script_down: get("script.down"),
            host_routes,
            router,
            l2proxy,
        });
    }
    if !nix::unistd::geteuid().is_root() {
        // a regular user's interfaces come from the lxc-usernet helper: veths on allowed
        // bridges, host sides named by the helper
        for i in &out {
            match &i.kind {
                IfaceKind::Veth { bridge: Some(_), .. } => {}
                IfaceKind::Veth { bridge: None, .. } => {
                    return Err(key_err(i.index, "link", "a regular user's veth needs a bridge that /etc/lxc/lxc-usernet allows"))
                }
                _ => {
                    return Err(key_err(i.index, "type", "a regular user's container can only have veth interfaces (on bridges /etc/lxc/lxc-usernet allows), or empty"))
                }
            }
        }
        if let Some(n) = spec
            .nets
            .iter()
            .find(|n| n.keys.iter().any(|(k, _)| k == "veth.pair"))
        {
            return Err(key_err(
                n.index,
                "veth.pair",
                "a regular user's host-side names are chosen by the lxc-usernet helper",
            ));
        }
    }
    Ok(out)
}

fn is_link_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_link_local(),
        IpAddr::V6(v) => (v.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// The monitor's part: make each interface's host side and put the container side into the
/// network namespace of `pid` (init, before it runs). On error, what was made goes with init's
/// namespace when the caller kills init.
pub fn make_host_side(ifaces: &mut [Iface], pid: i32) -> Result<(), String> {
    if ifaces.is_empty() {
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root() {
        return make_through_helper(ifaces, pid);
    }
    let mut nl = Netlink::open().map_err(|e| e.to_string())?;
    let ns = Namespace::OfPid(pid as u32);
    for i in ifaces {
        let fail = |e: NetError| key_err(i.index, "type", e);
        match &i.kind {
            IfaceKind::Veth { host, bridge } => {
                nl.create_veth(host, &i.name, ns).map_err(fail)?;
                let h = nl.link_index(host).map_err(fail)?;
                // a high MAC on the host side, as LXC gives it: a bridge takes the lowest MAC of
                // its ports, and must not change address whenever a container comes or goes
                let mac = warren_net::parse_hwaddr("fe:xx:xx:xx:xx:xx")
                    .map_err(|e| key_err(i.index, "hwaddr", e))?;
                nl.set_hwaddr(h, mac).map_err(fail)?;
                if let Some(mtu) = i.mtu {
                    nl.set_mtu(h, mtu).map_err(|e| key_err(i.index, "mtu", e))?;
                }
                if let Some(b) = bridge {
                    let bi = nl.link_index(b).map_err(|e| key_err(i.index, "link", e))?;
                    nl.set_master(h, bi)
                        .map_err(|e| key_err(i.index, "link", e))?;
                }
                nl.set_up(h).map_err(fail)?;
                if i.router {
                    // answer ARP and NDP for the container's gateway on its behalf
                    for (p, v) in [
                        (format!("/proc/sys/net/ipv4/conf/{host}/proxy_arp"), "1"),
                        (format!("/proc/sys/net/ipv6/conf/{host}/proxy_ndp"), "1"),
                    ] {
                        if let Err(e) = std::fs::write(&p, v) {
                            if !p.contains("ipv6") {
                                return Err(key_err(i.index, "veth.mode", format!("{p}: {e}")));
                            }
                        }
                    }
                }
                for r in &i.host_routes {
                    let key = if r.addr.is_ipv4() {
                        "veth.ipv4.route"
                    } else {
                        "veth.ipv6.route"
                    };
                    nl.add_route(Some(*r), None, Some(h))
                        .map_err(|e| key_err(i.index, key, e))?;
                }
            }
            IfaceKind::Macvlan { link, mode } => {
                nl.create_macvlan(&i.name, link, mode, ns).map_err(fail)?;
            }
            IfaceKind::Phys { link } => {
                let idx = nl
                    .link_index(link)
                    .map_err(|e| key_err(i.index, "link", e))?;
                nl.move_to(idx, pid as u32).map_err(fail)?;
            }
            IfaceKind::Vlan { link, id } => {
                nl.create_vlan(&i.name, link, *id, ns).map_err(fail)?;
            }
            IfaceKind::Ipvlan {
                link,
                mode,
                isolation,
            } => {
                nl.create_ipvlan(&i.name, link, mode, isolation, ns)
                    .map_err(fail)?;
            }
        }
        if let Some(link) = &i.l2proxy {
            l2proxy(&mut nl, i, link, true).map_err(|e| key_err(i.index, "l2proxy", e))?;
        }
    }
    Ok(())
}

/// The proxy neighbour entries of an interface's addresses on its host link (and for an
/// ipvlan, the routes to them through loopback that make the kernel use them), added or
/// removed.
fn l2proxy(nl: &mut Netlink, i: &Iface, link: &str, add: bool) -> Result<(), NetError> {
    let idx = nl.link_index(link)?;
    let lo = nl.link_index("lo")?;
    for a in &i.addresses {
        if add {
            nl.neigh_proxy(true, a.addr, idx)?;
        } else {
            let _ = nl.neigh_proxy(false, a.addr, idx);
        }
        if matches!(i.kind, IfaceKind::Ipvlan { .. }) {
            let host = Cidr {
                addr: a.addr,
                prefix: if a.addr.is_ipv4() { 32 } else { 128 },
            };
            if add {
                nl.add_route(Some(host), None, Some(lo))?;
            } else {
                let _ = nl.delete_route(host, lo);
            }
        }
    }
    Ok(())
}

/// A regular user's veths, made by the setuid helper `warren-user-nic` (beside this binary)
/// within what /etc/lxc/lxc-usernet allows; the host-side names it chose replace ours.
fn make_through_helper(ifaces: &mut [Iface], pid: i32) -> Result<(), String> {
    let helper = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("warren-user-nic")))
        .filter(|p| p.is_file())
        .ok_or("the lxc-usernet helper warren-user-nic is not installed beside warren-lxc (setuid root)")?;
    for i in ifaces.iter_mut() {
        let IfaceKind::Veth {
            host,
            bridge: Some(bridge),
        } = &mut i.kind
        else {
            continue;
        };
        let out = std::process::Command::new(&helper)
            .args(["create", &pid.to_string(), bridge, &i.name])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| key_err(i.index, "link", format!("run {}: {e}", helper.display())))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(key_err(
                i.index,
                "link",
                err.trim().trim_start_matches("warren-user-nic: "),
            ));
        }
        *host = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    Ok(())
}

/// Opens the network namespace of `pid` when the container has physical links to give back at
/// stop (the descriptor keeps the namespace alive after its processes are gone).
pub fn hold_netns(ifaces: &[Iface], pid: i32) -> Option<std::fs::File> {
    ifaces
        .iter()
        .any(|i| matches!(i.kind, IfaceKind::Phys { .. }))
        .then(|| std::fs::File::open(format!("/proc/{pid}/ns/net")).ok())
        .flatten()
}

/// Gives `phys` links back to the host under their own names, from the container's namespace
/// `netns` (held open since start), as LXC does. Without this the kernel would return them only
/// when the namespace goes, under their container names. Must be called by a single-threaded
/// process (it enters the namespace for a moment).
pub fn return_phys(ifaces: &[Iface], netns: &std::fs::File) {
    use std::os::fd::AsRawFd;
    let phys: Vec<(&str, &str)> = ifaces
        .iter()
        .filter_map(|i| match &i.kind {
            IfaceKind::Phys { link } => Some((i.name.as_str(), link.as_str())),
            _ => None,
        })
        .collect();
    if phys.is_empty() {
        return;
    }
    let Ok(host) = std::fs::File::open("/proc/self/ns/net") else {
        return;
    };
    // a netlink socket belongs to the namespace it was made in
    if nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
        return;
    }
    let nl = Netlink::open();
    if let Err(e) = nix::sched::setns(&host, nix::sched::CloneFlags::CLONE_NEWNET) {
        crate::error!("return to the host's network namespace: {e}");
        return;
    }
    let Ok(mut nl) = nl else { return };
    for (inside, original) in phys {
        match nl.link_index(inside) {
            Ok(idx) => {
                if let Err(e) = nl.move_to_ns_named(idx, host.as_raw_fd(), original) {
                    crate::error!("give {inside} back to the host as {original}: {e}");
                }
            }
            Err(e) => crate::error!("find {inside} in the container to give it back: {e}"),
        }
    }
}

/// After the container has stopped: delete the host sides still there. The kernel removes them
/// with the container's network namespace too, but asynchronously, after `stop` has returned;
/// deleted here, they are gone when the container is reported STOPPED, as with LXC.
pub fn remove_host_side(ifaces: &[Iface]) {
    if ifaces.iter().any(|i| i.l2proxy.is_some()) {
        if let Ok(mut nl) = Netlink::open() {
            for i in ifaces {
                if let Some(link) = &i.l2proxy {
                    let _ = l2proxy(&mut nl, i, link, false);
                }
            }
        }
    }
    let hosts: Vec<&str> = ifaces
        .iter()
        .filter_map(|i| match &i.kind {
            IfaceKind::Veth { host, .. } => Some(host.as_str()),
            _ => None,
        })
        .collect();
    if hosts.is_empty() {
        return;
    }
    let Ok(mut nl) = Netlink::open() else {
        return;
    };
    for h in hosts {
        if let Ok(idx) = nl.link_index(h) {
            // (gone meanwhile with the namespace: nothing to do)
            let _ = nl.delete_link(idx);
        }
    }
}

/// Init's part, in its own network namespace: loopback up, then each interface named,
/// addressed, brought up and routed as configured.
pub fn configure_inside(ifaces: &[Iface]) -> Result<(), String> {
    let mut nl = Netlink::open().map_err(|e| e.to_string())?;
    if let Ok(lo) = nl.link_index("lo") {
        nl.set_up(lo).map_err(|e| format!("bring lo up: {e}"))?;
    }
    for i in ifaces {
        crate::debug!("configuring {i:?}");
        let err = |key: &str| {
            let key = key.to_string();
            let index = i.index;
            move |e: NetError| key_err(index, &key, e)
        };
        let idx = nl.link_index(&i.arrives_as).map_err(err("type"))?;
        if i.arrives_as != i.name {
            nl.rename(idx, &i.name).map_err(err("name"))?;
        }
        if let Some(mac) = i.hwaddr {
            nl.set_hwaddr(idx, mac).map_err(err("hwaddr"))?;
        }
        if let Some(mtu) = i.mtu {
            nl.set_mtu(idx, mtu).map_err(err("mtu"))?;
        }
        for a in &i.addresses {
            let key = if a.addr.is_ipv4() {
                "ipv4.address"
            } else {
                "ipv6.address"
            };
            nl.add_address(idx, *a).map_err(err(key))?;
        }
        if i.up {
            nl.set_up(idx).map_err(|e| {
                let hint = match (&i.kind, &e) {
                    (
                        IfaceKind::Vlan { link, .. }
                        | IfaceKind::Macvlan { link, .. }
                        | IfaceKind::Ipvlan { link, .. },
                        NetError::Kernel { source, .. },
                    ) if source.raw_os_error() == Some(libc::ENETDOWN) => {
                        format!(" (its host link {link} is down: bring it up first)")
                    }
                    _ => String::new(),
                };
                format!("{}{hint}", key_err(i.index, "flags", e))
            })?;
            for (g, key) in [
                (i.ipv4_gateway, "ipv4.gateway"),
                (i.ipv6_gateway, "ipv6.gateway"),
            ] {
                match g {
                    Some(Gateway::Addr(ip)) => {
                        // a gateway outside every subnet of the interface is reached on-link
                        if !i.addresses.iter().any(|c| in_subnet(*c, ip)) {
                            let host = Cidr {
                                addr: ip,
                                prefix: if ip.is_ipv4() { 32 } else { 128 },
                            };
                            nl.add_route(Some(host), None, Some(idx))
                                .map_err(err(key))?;
                        }
                        nl.add_route(None, Some(ip), Some(idx)).map_err(err(key))?;
                    }
                    Some(Gateway::Device) => {
                        let any = Cidr {
                            addr: if key.starts_with("ipv4") {
                                IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
                            } else {
                                IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
                            },
                            prefix: 0,
                        };
                        nl.add_route(Some(any), None, Some(idx)).map_err(err(key))?;
                    }
                    None => {}
                }
            }
        }
    }
    Ok(())
}

fn in_subnet(c: Cidr, ip: IpAddr) -> bool {
    match (c.addr, ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(c.prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(c.prefix))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let c: Cidr = "10.0.3.5/24".parse().expect("cidr");
        assert!(in_subnet(c, "10.0.3.1".parse().expect("ip")));
        assert!(!in_subnet(c, "10.0.4.1".parse().expect("ip")));
        let c: Cidr = "fd00::5/64".parse().expect("cidr");
        assert!(in_subnet(c, "fd00::1".parse().expect("ip")));
        assert!(!in_subnet(c, "10.0.3.1".parse().expect("ip")));
    }
}
