//! Host and container networking over rtnetlink, synchronously (no tokio, no `ip` binary):
//! links (veth pairs, bridges, macvlan), moving links between network namespaces, addresses and
//! routes. The caller's network namespace is the one acted on, except where a message names
//! another (a veth peer or a moved link goes to the namespace of a pid).

pub mod dnsmasq;
mod netlink;
pub mod nft;
pub mod usernet;

use std::net::IpAddr;

pub use netlink::Netlink;
use netlink::{
    Msg, Reply, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
    RTM_DELLINK, RTM_DELNEIGH, RTM_DELROUTE, RTM_GETADDR, RTM_GETLINK, RTM_NEWADDR, RTM_NEWLINK,
    RTM_NEWNEIGH, RTM_NEWROUTE, RTM_SETLINK,
};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("netlink socket: {0}")]
    Socket(std::io::Error),
    /// The kernel refused a request: what was asked, and its error.
    #[error("{what}: {source}")]
    Kernel {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Decode(String),
    #[error("no network interface named \"{0}\"")]
    NoSuchLink(String),
    #[error("{0}")]
    Invalid(String),
}

/// An address with its prefix length (`10.0.3.5/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    /// `ADDR[/PREFIX]` (LXC also allows `ADDR/PREFIX BCAST` for IPv4: the broadcast is ignored,
    /// the kernel derives it); a missing prefix is a host address (/32, /128).
    fn from_str(s: &str) -> Result<Cidr, String> {
        let first = s.split_whitespace().next().unwrap_or("");
        let (addr, prefix) = match first.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (first, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("\"{s}\" is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("\"{s}\": the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A MAC address from LXC's notation, where each `xx` byte is random (`00:16:3e:xx:xx:xx`).
/// The first byte is made a unicast, locally administered one when it is random.
pub fn parse_hwaddr(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!(
            "\"{s}\" is not a MAC address (six bytes, 00:16:3e:xx:xx:xx)"
        ));
    }
    let mut random = [0u8; 6];
    let _ = getrandom(&mut random);
    let mut out = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        out[i] = if p.eq_ignore_ascii_case("xx") {
            if i == 0 {
                (random[i] & 0xfe) | 0x02
            } else {
                random[i]
            }
        } else {
            u8::from_str_radix(p, 16)
                .ok()
                .filter(|_| p.len() == 2)
                .ok_or_else(|| format!("\"{s}\" is not a MAC address"))?
        };
    }
    if out[0] & 1 == 1 {
        return Err(format!("\"{s}\" is a multicast MAC address"));
    }
    Ok(out)
}

/// Fills `buf` from the kernel's random pool.
fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// A random interface name `<prefix>XXXXXX` (at most 15 bytes), as LXC names host-side veths.
pub fn random_name(prefix: &str) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut r = [0u8; 6];
    if getrandom(&mut r).is_err() {
        // no /dev/urandom (a descriptor limit, say): still not a fixed name
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
            ^ std::process::id().rotate_left(13);
        r.copy_from_slice(&t.to_le_bytes().repeat(2)[..6]);
    }
    let tail: String = r
        .iter()
        .map(|b| CHARS[*b as usize % CHARS.len()] as char)
        .collect();
    let mut name = format!("{prefix}{tail}");
    name.truncate(15);
    name
}

/// Checks an interface name as the kernel would (1-15 bytes, no `/`, `:` or whitespace).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!(
            "interface name \"{name}\" must be 1 to 15 characters"
        ));
    }
    if name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(format!("\"{name}\" is not a valid interface name"));
    }
    Ok(())
}

/// Where a new link, or a link being moved, goes: the caller's namespace, or the network
/// namespace of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    Here,
    OfPid(u32),
    /// The network namespace behind this descriptor (no pid to be reused meanwhile).
    OfFd(std::os::fd::RawFd),
}

// rtnetlink attribute numbers (linux/if_link.h, if_addr.h, rtnetlink.h, veth.h)
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFLA_MACVLAN_MODE: u16 = 1;
const IFLA_VLAN_ID: u16 = 1;
const IFLA_IPVLAN_MODE: u16 = 1;
const IFLA_IPVLAN_FLAGS: u16 = 2;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_DST: u16 = 1;
const NDA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const IFF_UP: u32 = 1;
/// `struct ifinfomsg` and `struct ifaddrmsg` sizes.
const IFINFO_LEN: usize = 16;
const IFADDR_LEN: usize = 8;

impl Netlink {
    fn get_link(&mut self, name: &str) -> Result<Reply, NetError> {
        let mut m = Msg::new(RTM_GETLINK, NLM_F_REQUEST).ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        match self.request(m, &format!("look up {name}")) {
            Ok(replies) => replies
                .into_iter()
                .find(|r| r.ty == RTM_NEWLINK)
                .ok_or_else(|| NetError::NoSuchLink(name.to_string())),
            Err(NetError::Kernel { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => {
                Err(NetError::NoSuchLink(name.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// The index of link `name`.
    pub fn link_index(&mut self, name: &str) -> Result<u32, NetError> {
        Ok(self.get_link(name)?.u32_at(4))
    }

    /// The kind of link `name` (`bridge`, `veth`, ...), `None` for a plain device.
    pub fn link_kind(&mut self, name: &str) -> Result<Option<String>, NetError> {
        let r = self.get_link(name)?;
        for (ty, v) in r.attrs(IFINFO_LEN) {
            if ty == IFLA_LINKINFO {
                for (t, k) in netlink::attrs(v) {
                    if t == IFLA_INFO_KIND {
                        return Ok(Some(netlink::text(k)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The names of every link here.
    pub fn link_names(&mut self) -> Result<Vec<String>, NetError> {
        let m = Msg::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP).ifinfo(0, 0, 0);
        let replies = self.request(m, "list links")?;
        Ok(replies
            .iter()
            .filter(|r| r.ty == RTM_NEWLINK)
            .filter_map(|r| {
                r.attrs(IFINFO_LEN)
                    .into_iter()
                    .find(|(t, _)| *t == IFLA_IFNAME)
                    .map(|(_, v)| netlink::text(v))
            })
            .collect())
    }

    fn create(&mut self, m: Msg, what: &str) -> Result<(), NetError> {
        self.request(m, what).map(|_| ())
    }

    fn new_link(name: &str) -> Msg {
        let mut m = Msg::new(
            RTM_NEWLINK,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        m
    }

    /// A bridge `name` (down; see [`Netlink::set_up`]).
    pub fn create_bridge(&mut self, name: &str) -> Result<(), NetError> {
        check_name(name).map_err(NetError::Invalid)?;
        let mut m = Self::new_link(name);
        m.begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "bridge")
            .end();
        self.create(m, &format!("create bridge {name}"))
    }

    /// A veth pair: `host` here, `peer` in `peer_ns` (created there directly, so its name can't
    /// clash with a host link).
    pub fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_ns: Namespace,
    ) -> Result<(), NetError> {
        check_name(host).map_err(NetError::Invalid)?;
        check_name(peer).map_err(NetError::Invalid)?;
        let mut m = Self::new_link(host);
        m.begin(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "veth");
        m.begin(IFLA_INFO_DATA).begin_peer(VETH_INFO_PEER);
        m.attr_str(IFLA_IFNAME, peer);
        push_ns(&mut m, peer_ns);
        m.end().end().end();
        self.create(m, &format!("create veth pair {host}/{peer}"))
    }

    /// A link of `kind` named `name` on host link `link`, in `ns`, with `data` attributes.
    fn create_on(
        &mut self,
        name: &str,
        link: &str,
        kind: &str,
        ns: Namespace,
        data: &[(u16, Vec<u8>)],
        what: String,
    ) -> Result<(), NetError> {
        check_name(name).map_err(NetError::Invalid)?;
        let parent = self.link_index(link)?;
        let mut m = Self::new_link(name);
        m.attr_u32(IFLA_LINK, parent);
        push_ns(&mut m, ns);
        m.begin(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, kind);
        m.begin(IFLA_INFO_DATA);
        for (t, v) in data {
            m.attr(*t, v);
        }
        m.end().end();
        self.create(m, &what)
    }

    /// A macvlan `name` on `link`, in `ns`.
    pub fn create_macvlan(
        &mut self,
        name: &str,
        link: &str,
        mode: &str,
        ns: Namespace,
    ) -> Result<(), NetError> {
        let mode: u32 = match mode {
            "private" => 1,
            "vepa" => 2,
            "bridge" | "" => 4,
            "passthru" => 8,
            other => {
                return Err(NetError::Invalid(format!(
                    "unknown macvlan mode \"{other}\""
                )))
            }
        };
        self.create_on(
            name,
            link,
            "macvlan",
            ns,
            &[(IFLA_MACVLAN_MODE, mode.to_ne_bytes().to_vec())],
            format!("create macvlan {name} on {link}"),
        )
    }

    /// An 802.1q VLAN `name` with id `id` on `link`, in `ns`.
    pub fn create_vlan(
        &mut self,
        name: &str,
        link: &str,
        id: u16,
        ns: Namespace,
    ) -> Result<(), NetError> {
        if id == 0 || id > 4094 {
            return Err(NetError::Invalid(format!("VLAN id {id} is not 1 to 4094")));
        }
        self.create_on(
            name,
            link,
            "vlan",
            ns,
            &[(IFLA_VLAN_ID, id.to_ne_bytes().to_vec())],
            format!("create VLAN {name} (id {id}) on {link}"),
        )
    }

    /// An ipvlan `name` on `link` in `mode` (l2, l3, l3s) with `isolation` (bridge, private,
    /// vepa), in `ns`.
    pub fn create_ipvlan(
        &mut self,
        name: &str,
        link: &str,
        mode: &str,
        isolation: &str,
        ns: Namespace,
    ) -> Result<(), NetError> {
        let mode: u16 = match mode {
            "l2" => 0,
            "l3" | "" => 1,
            "l3s" => 2,
            other => {
                return Err(NetError::Invalid(format!(
                    "unknown ipvlan mode \"{other}\""
                )))
            }
        };
        let flags: u16 = match isolation {
            "bridge" | "" => 0,
            "private" => 1,
            "vepa" => 2,
            other => {
                return Err(NetError::Invalid(format!(
                    "unknown ipvlan isolation \"{other}\""
                )))
            }
        };
        self.create_on(
            name,
            link,
            "ipvlan",
            ns,
            &[
                (IFLA_IPVLAN_MODE, mode.to_ne_bytes().to_vec()),
                (IFLA_IPVLAN_FLAGS, flags.to_ne_bytes().to_vec()),
            ],
            format!("create ipvlan {name} on {link}"),
        )
    }

    fn set_link(
        &mut self,
        index: u32,
        flags: u32,
        change: u32,
        attrs: impl FnOnce(&mut Msg),
        what: &str,
    ) -> Result<(), NetError> {
        let mut m = Msg::new(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK).ifinfo(index, flags, change);
        attrs(&mut m);
        self.request(m, what).map(|_| ())
    }

    pub fn set_up(&mut self, index: u32) -> Result<(), NetError> {
        self.set_link(index, IFF_UP, IFF_UP, |_| {}, "bring a link up")
    }

    pub fn set_master(&mut self, index: u32, bridge: u32) -> Result<(), NetError> {
        self.set_link(
            index,
            0,
            0,
            |m| {
                m.attr_u32(IFLA_MASTER, bridge);
            },
            "attach a link to its bridge",
        )
    }

    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), NetError> {
        self.set_link(
            index,
            0,
            0,
            |m| {
                m.attr_u32(IFLA_MTU, mtu);
            },
            &format!("set the MTU to {mtu}"),
        )
    }

    pub fn set_hwaddr(&mut self, index: u32, mac: [u8; 6]) -> Result<(), NetError> {
        self.set_link(
            index,
            0,
            0,
            |m| {
                m.attr(IFLA_ADDRESS, &mac);
            },
            "set the MAC address",
        )
    }

    pub fn rename(&mut self, index: u32, name: &str) -> Result<(), NetError> {
        check_name(name).map_err(NetError::Invalid)?;
        self.set_link(
            index,
            0,
            0,
            |m| {
                m.attr_str(IFLA_IFNAME, name);
            },
            &format!("rename a link to {name}"),
        )
    }

    /// Moves link `index` into the network namespace of `pid`.
    pub fn move_to(&mut self, index: u32, pid: u32) -> Result<(), NetError> {
        self.set_link(
            index,
            0,
            0,
            |m| {
                m.attr_u32(IFLA_NET_NS_PID, pid);
            },
            "move a link into the container",
        )
    }

    /// Moves link `index` into the network namespace behind `netns` under the name `name` (one
    /// request: the name is taken in the target namespace).
    pub fn move_to_ns_named(
        &mut self,
        index: u32,
        netns: std::os::fd::RawFd,
        name: &str,
    ) -> Result<(), NetError> {
        check_name(name).map_err(NetError::Invalid)?;
        self.set_link(
            index,
            0,
            0,
            |m| {
                m.attr_u32(IFLA_NET_NS_FD, netns as u32);
                m.attr_str(IFLA_IFNAME, name);
            },
            &format!("move a link back to the host as {name}"),
        )
    }

    pub fn delete_link(&mut self, index: u32) -> Result<(), NetError> {
        let m = Msg::new(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK).ifinfo(index, 0, 0);
        self.request(m, "delete a link").map(|_| ())
    }

    /// Adds `cidr` to link `index`.
    pub fn add_address(&mut self, index: u32, cidr: Cidr) -> Result<(), NetError> {
        let mut m = Msg::new(
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .ifaddr(family(cidr.addr), cidr.prefix, index);
        let bytes = addr_bytes(cidr.addr);
        m.attr(IFA_LOCAL, &bytes);
        m.attr(IFA_ADDRESS, &bytes);
        if let IpAddr::V4(a) = cidr.addr {
            if cidr.prefix < 31 {
                let host_bits = u32::MAX.checked_shr(u32::from(cidr.prefix)).unwrap_or(0);
                let bcast = u32::from(a) | host_bits;
                m.attr(IFA_BROADCAST, &bcast.to_be_bytes());
            }
        }
        self.request(m, &format!("add address {cidr}")).map(|_| ())
    }

    /// The addresses of link `index` (all links with `None`).
    pub fn addresses(&mut self, index: Option<u32>) -> Result<Vec<Cidr>, NetError> {
        let m = Msg::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP).ifaddr(0, 0, 0);
        let replies = self.request(m, "list addresses")?;
        let mut out = Vec::new();
        for r in replies.iter().filter(|r| r.ty == RTM_NEWADDR) {
            if index.is_some_and(|i| i != r.u32_at(4)) {
                continue;
            }
            let attrs = r.attrs(IFADDR_LEN);
            let pick = |want: u16| {
                attrs
                    .iter()
                    .find(|(t, _)| *t == want)
                    .and_then(|(_, v)| parse_addr(v))
            };
            if let Some(addr) = pick(IFA_LOCAL).or_else(|| pick(IFA_ADDRESS)) {
                out.push(Cidr {
                    addr,
                    prefix: r.u8_at(1),
                });
            }
        }
        Ok(out)
    }

    /// A route to `dest` (the default route with `None`) through `gateway`, or directly on link
    /// `oif` when there is no gateway.
    pub fn add_route(
        &mut self,
        dest: Option<Cidr>,
        gateway: Option<IpAddr>,
        oif: Option<u32>,
    ) -> Result<(), NetError> {
        let v4 = match (dest, gateway) {
            (Some(d), _) => d.addr.is_ipv4(),
            (None, Some(g)) => g.is_ipv4(),
            (None, None) => {
                return Err(NetError::Invalid(
                    "a route needs a destination or a gateway".into(),
                ))
            }
        };
        let scope = if gateway.is_some() {
            RT_SCOPE_UNIVERSE
        } else {
            RT_SCOPE_LINK
        };
        let mut m = Msg::new(
            RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .rtmsg(
            if v4 { AF_INET } else { AF_INET6 },
            dest.map_or(0, |d| d.prefix),
            scope,
        );
        if let Some(d) = dest {
            m.attr(RTA_DST, &addr_bytes(d.addr));
        }
        if let Some(g) = gateway {
            m.attr(RTA_GATEWAY, &addr_bytes(g));
        }
        if let Some(i) = oif {
            m.attr_u32(RTA_OIF, i);
        }
        let what = match (dest, gateway) {
            (Some(d), Some(g)) => format!("add route to {d} via {g}"),
            (Some(d), None) => format!("add route to {d}"),
            (None, Some(g)) => format!("add default route via {g}"),
            (None, None) => String::new(),
        };
        self.request(m, &what).map(|_| ())
    }
}

impl Netlink {
    /// Adds (or with `add` false, removes) a proxy neighbour entry for `addr` on link `index`:
    /// the host answers ARP (IPv4) or NDP (IPv6) for it there (`ip neigh add proxy ADDR dev
    /// LINK`). Removing one that is gone is no error.
    pub fn neigh_proxy(&mut self, add: bool, addr: IpAddr, index: u32) -> Result<(), NetError> {
        let (ty, flags) = if add {
            (
                RTM_NEWNEIGH,
                NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
            )
        } else {
            (RTM_DELNEIGH, NLM_F_REQUEST | NLM_F_ACK)
        };
        let mut m = Msg::new(ty, flags).ndmsg_proxy(family(addr), index);
        m.attr(NDA_DST, &addr_bytes(addr));
        let what = format!(
            "{} the proxy neighbour entry for {addr}",
            if add { "add" } else { "remove" }
        );
        match self.request(m, &what) {
            Err(NetError::Kernel { source, .. })
                if !add && source.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// Removes the route to `dest` through link `oif` (one that is gone is no error).
    pub fn delete_route(&mut self, dest: Cidr, oif: u32) -> Result<(), NetError> {
        let mut m = Msg::new(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK).rtmsg(
            family(dest.addr),
            dest.prefix,
            RT_SCOPE_LINK,
        );
        m.attr(RTA_DST, &addr_bytes(dest.addr));
        m.attr_u32(RTA_OIF, oif);
        match self.request(m, &format!("remove the route to {dest}")) {
            Err(NetError::Kernel { source, .. })
                if matches!(
                    source.raw_os_error(),
                    Some(libc::ESRCH) | Some(libc::ENOENT)
                ) =>
            {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }
}

fn push_ns(m: &mut Msg, ns: Namespace) {
    match ns {
        Namespace::OfPid(pid) => {
            m.attr_u32(IFLA_NET_NS_PID, pid);
        }
        Namespace::OfFd(fd) => {
            m.attr_u32(IFLA_NET_NS_FD, fd as u32);
        }
        Namespace::Here => {}
    }
}

fn family(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    }
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn parse_addr(v: &[u8]) -> Option<IpAddr> {
    match v.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(v).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(v).ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_as_lxc_writes_them() {
        let c: Cidr = "10.0.3.5/24".parse().expect("cidr");
        assert_eq!(c.to_string(), "10.0.3.5/24");
        let c: Cidr = "10.0.3.5/24 10.0.3.255".parse().expect("with broadcast");
        assert_eq!(c.prefix, 24);
        let c: Cidr = "10.0.3.5".parse().expect("host");
        assert_eq!(c.prefix, 32);
        let c: Cidr = "fd00::5/64".parse().expect("v6");
        assert_eq!(c.prefix, 64);
        assert!("10.0.3.5/33".parse::<Cidr>().is_err());
        assert!("10.0.3/24".parse::<Cidr>().is_err());
    }

    #[test]
    fn hwaddr_random_bytes_and_validation() {
        let m = parse_hwaddr("00:16:3e:xx:xx:xx").expect("mac");
        assert_eq!(&m[..3], &[0x00, 0x16, 0x3e]);
        let m = parse_hwaddr("xx:xx:xx:xx:xx:xx").expect("all random");
        assert_eq!(m[0] & 0x03, 0x02, "locally administered unicast");
        assert!(parse_hwaddr("01:00:5e:00:00:01").is_err());
        assert!(parse_hwaddr("00:16:3e:00:00").is_err());
        assert!(parse_hwaddr("00:16:3e:0g:00:00").is_err());
    }

    #[test]
    fn names_follow_the_kernel_rules() {
        assert!(check_name("eth0").is_ok());
        assert!(check_name("a-very-long-name").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("").is_err());
        let n = random_name("veth");
        assert_eq!(n.len(), 10);
        assert!(check_name(&n).is_ok());
    }
}
