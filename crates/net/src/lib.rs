//! Host and container networking over rtnetlink, synchronously (no tokio, no `ip` binary):
//! links (veth pairs, bridges, macvlan), moving links between network namespaces, addresses and
//! routes. The caller's network namespace is the one acted on, except where a message names
//! another (a veth peer or a moved link goes to the namespace of a pid).

pub mod dnsmasq;
mod netlink;
pub mod nft;
pub mod usernet;

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoIpVlan, InfoKind, InfoMacVlan, InfoVeth, InfoVlan, IpVlanFlags, IpVlanMode,
    LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

pub use netlink::Netlink;

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

impl Netlink {
    /// The index of link `name`.
    pub fn link_index(&mut self, name: &str) -> Result<u32, NetError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let what = format!("look up {name}");
        let replies = match self.request(RouteNetlinkMessage::GetLink(msg), NLM_F_REQUEST, &what) {
            Ok(r) => r,
            Err(NetError::Kernel { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => {
                return Err(NetError::NoSuchLink(name.to_string()))
            }
            Err(e) => return Err(e),
        };
        for r in replies {
            if let RouteNetlinkMessage::NewLink(l) = r {
                return Ok(l.header.index);
            }
        }
        Err(NetError::NoSuchLink(name.to_string()))
    }

    /// The kind of link `name` (`bridge`, `veth`, ...), `None` for a plain device.
    pub fn link_kind(&mut self, name: &str) -> Result<Option<String>, NetError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let replies = self
            .request(
                RouteNetlinkMessage::GetLink(msg),
                NLM_F_REQUEST,
                "look up a link",
            )
            .map_err(|e| match e {
                NetError::Kernel { source, .. } if source.raw_os_error() == Some(libc::ENODEV) => {
                    NetError::NoSuchLink(name.to_string())
                }
                e => e,
            })?;
        for r in replies {
            if let RouteNetlinkMessage::NewLink(l) = r {
                for a in &l.attributes {
                    if let LinkAttribute::LinkInfo(infos) = a {
                        for i in infos {
                            if let LinkInfo::Kind(k) = i {
                                return Ok(Some(k.to_string()));
                            }
                        }
                    }
                }
                return Ok(None);
            }
        }
        Err(NetError::NoSuchLink(name.to_string()))
    }

    /// The names of every link here.
    pub fn link_names(&mut self) -> Result<Vec<String>, NetError> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_REQUEST | NLM_F_DUMP,
            "list links",
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    fn create(&mut self, msg: LinkMessage, what: &str) -> Result<(), NetError> {
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            what,
        )
        .map(|_| ())
    }

    /// A bridge `name` (down; see [`Netlink::set_up`]).
    pub fn create_bridge(&mut self, name: &str) -> Result<(), NetError> {
        check_name(name).map_err(NetError::Invalid)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.create(msg, &format!("create bridge {name}"))
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
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        match peer_ns {
            Namespace::OfPid(pid) => peer_msg.attributes.push(LinkAttribute::NetNsPid(pid)),
            Namespace::OfFd(fd) => peer_msg.attributes.push(LinkAttribute::NetNsFd(fd)),
            Namespace::Here => {}
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        self.create(msg, &format!("create veth pair {host}/{peer}"))
    }

    /// A macvlan `name` on `link`, in `ns`.
    pub fn create_macvlan(
        &mut self,
        name: &str,
        link: &str,
        mode: &str,
        ns: Namespace,
    ) -> Result<(), NetError> {
        check_name(name).map_err(NetError::Invalid)?;
        let parent = self.link_index(link)?;
        let mode = match mode {
            "private" => MacVlanMode::Private,
            "vepa" => MacVlanMode::Vepa,
            "bridge" | "" => MacVlanMode::Bridge,
            "passthru" => MacVlanMode::Passthrough,
            other => {
                return Err(NetError::Invalid(format!(
                    "unknown macvlan mode \"{other}\""
                )))
            }
        };
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Link(parent));
        match ns {
            Namespace::OfPid(pid) => msg.attributes.push(LinkAttribute::NetNsPid(pid)),
            Namespace::OfFd(fd) => msg.attributes.push(LinkAttribute::NetNsFd(fd)),
            Namespace::Here => {}
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::MacVlan),
            LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(mode)])),
        ]));
        self.create(msg, &format!("create macvlan {name} on {link}"))
    }

    /// An 802.1q VLAN `name` with id `id` on `link`, in `ns`.
    pub fn create_vlan(
        &mut self,
        name: &str,
        link: &str,
        id: u16,
        ns: Namespace,
    ) -> Result<(), NetError> {
        check_name(name).map_err(NetError::Invalid)?;
        if id == 0 || id > 4094 {
            return Err(NetError::Invalid(format!("VLAN id {id} is not 1 to 4094")));
        }
        let parent = self.link_index(link)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Link(parent));
        push_ns(&mut msg, ns);
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vlan),
            LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(id)])),
        ]));
        self.create(msg, &format!("create VLAN {name} (id {id}) on {link}"))
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
        check_name(name).map_err(NetError::Invalid)?;
        let parent = self.link_index(link)?;
        let mode = match mode {
            "l2" => IpVlanMode::L2,
            "l3" | "" => IpVlanMode::L3,
            "l3s" => IpVlanMode::L3S,
            other => {
                return Err(NetError::Invalid(format!(
                    "unknown ipvlan mode \"{other}\""
                )))
            }
        };
        let flags = match isolation {
            "bridge" | "" => IpVlanFlags::empty(),
            "private" => IpVlanFlags::Private,
            "vepa" => IpVlanFlags::Vepa,
            other => {
                return Err(NetError::Invalid(format!(
                    "unknown ipvlan isolation \"{other}\""
                )))
            }
        };
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Link(parent));
        push_ns(&mut msg, ns);
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::IpVlan),
            LinkInfo::Data(InfoData::IpVlan(vec![
                InfoIpVlan::Mode(mode),
                InfoIpVlan::Flags(flags),
            ])),
        ]));
        self.create(msg, &format!("create ipvlan {name} on {link}"))
    }

    fn set_link(
        &mut self,
        index: u32,
        attrs: Vec<LinkAttribute>,
        flags: Option<(LinkFlags, LinkFlags)>,
        what: &str,
    ) -> Result<(), NetError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        if let Some((set, mask)) = flags {
            msg.header.flags = set;
            msg.header.change_mask = mask;
        }
        msg.attributes = attrs;
        self.request(
            RouteNetlinkMessage::SetLink(msg),
            NLM_F_REQUEST | NLM_F_ACK,
            what,
        )
        .map(|_| ())
    }

    pub fn set_up(&mut self, index: u32) -> Result<(), NetError> {
        self.set_link(
            index,
            Vec::new(),
            Some((LinkFlags::Up, LinkFlags::Up)),
            "bring a link up",
        )
    }

    pub fn set_master(&mut self, index: u32, bridge: u32) -> Result<(), NetError> {
        self.set_link(
            index,
            vec![LinkAttribute::Controller(bridge)],
            None,
            "attach a link to its bridge",
        )
    }

    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), NetError> {
        self.set_link(
            index,
            vec![LinkAttribute::Mtu(mtu)],
            None,
            &format!("set the MTU to {mtu}"),
        )
    }

    pub fn set_hwaddr(&mut self, index: u32, mac: [u8; 6]) -> Result<(), NetError> {
        self.set_link(
            index,
            vec![LinkAttribute::Address(mac.to_vec())],
            None,
            "set the MAC address",
        )
    }

    pub fn rename(&mut self, index: u32, name: &str) -> Result<(), NetError> {
        check_name(name).map_err(NetError::Invalid)?;
        self.set_link(
            index,
            vec![LinkAttribute::IfName(name.to_string())],
            None,
            &format!("rename a link to {name}"),
        )
    }

    /// Moves link `index` into the network namespace of `pid`.
    pub fn move_to(&mut self, index: u32, pid: u32) -> Result<(), NetError> {
        self.set_link(
            index,
            vec![LinkAttribute::NetNsPid(pid)],
            None,
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
            vec![
                LinkAttribute::NetNsFd(netns),
                LinkAttribute::IfName(name.to_string()),
            ],
            None,
            &format!("move a link back to the host as {name}"),
        )
    }

    pub fn delete_link(&mut self, index: u32) -> Result<(), NetError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.request(
            RouteNetlinkMessage::DelLink(msg),
            NLM_F_REQUEST | NLM_F_ACK,
            "delete a link",
        )
        .map(|_| ())
    }

    /// Adds `cidr` to link `index`.
    pub fn add_address(&mut self, index: u32, cidr: Cidr) -> Result<(), NetError> {
        let mut msg = AddressMessage::default();
        msg.header.index = index;
        msg.header.prefix_len = cidr.prefix;
        msg.header.family = family(cidr.addr);
        msg.attributes.push(AddressAttribute::Local(cidr.addr));
        msg.attributes.push(AddressAttribute::Address(cidr.addr));
        if let IpAddr::V4(a) = cidr.addr {
            if cidr.prefix < 31 {
                let host_bits = u32::MAX.checked_shr(u32::from(cidr.prefix)).unwrap_or(0);
                let bcast = u32::from(a) | host_bits;
                msg.attributes
                    .push(AddressAttribute::Broadcast(std::net::Ipv4Addr::from(bcast)));
            }
        }
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &format!("add address {cidr}"),
        )
        .map(|_| ())
    }

    /// The addresses of link `index` (all links with `None`).
    pub fn addresses(&mut self, index: Option<u32>) -> Result<Vec<Cidr>, NetError> {
        let replies = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_REQUEST | NLM_F_DUMP,
            "list addresses",
        )?;
        let mut out = Vec::new();
        for r in replies {
            if let RouteNetlinkMessage::NewAddress(a) = r {
                if index.is_some_and(|i| i != a.header.index) {
                    continue;
                }
                let addr = a
                    .attributes
                    .iter()
                    .find_map(|x| match x {
                        AddressAttribute::Local(ip) => Some(*ip),
                        _ => None,
                    })
                    .or_else(|| {
                        a.attributes.iter().find_map(|x| match x {
                            AddressAttribute::Address(ip) => Some(*ip),
                            _ => None,
                        })
                    });
                if let Some(addr) = addr {
                    out.push(Cidr {
                        addr,
                        prefix: a.header.prefix_len,
                    });
                }
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
        let mut msg = RouteMessage::default();
        msg.header.address_family = if v4 {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Static;
        msg.header.kind = RouteType::Unicast;
        msg.header.scope = if gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        if let Some(d) = dest {
            msg.header.destination_prefix_length = d.prefix;
            msg.attributes
                .push(RouteAttribute::Destination(route_addr(d.addr)));
        }
        if let Some(g) = gateway {
            msg.attributes.push(RouteAttribute::Gateway(route_addr(g)));
        }
        if let Some(i) = oif {
            msg.attributes.push(RouteAttribute::Oif(i));
        }
        let what = match (dest, gateway) {
            (Some(d), Some(g)) => format!("add route to {d} via {g}"),
            (Some(d), None) => format!("add route to {d}"),
            (None, Some(g)) => format!("add default route via {g}"),
            (None, None) => unreachable!("checked above"),
        };
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &what,
        )
        .map(|_| ())
    }
}

fn push_ns(msg: &mut LinkMessage, ns: Namespace) {
    match ns {
        Namespace::OfPid(pid) => msg.attributes.push(LinkAttribute::NetNsPid(pid)),
        Namespace::OfFd(fd) => msg.attributes.push(LinkAttribute::NetNsFd(fd)),
        Namespace::Here => {}
    }
}

fn family(a: IpAddr) -> AddressFamily {
    if a.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn route_addr(a: IpAddr) -> RouteAddress {
    match a {
        IpAddr::V4(v) => RouteAddress::Inet(v),
        IpAddr::V6(v) => RouteAddress::Inet6(v),
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
