//! One synchronous rtnetlink socket, and the few messages warren sends on it, encoded by hand:
//! the link, address and route requests need a handful of attributes each, and a general
//! rtnetlink library would triple the code every container monitor maps.

use std::os::fd::{AsRawFd, OwnedFd};

use crate::NetError;

// message types
pub(crate) const RTM_NEWLINK: u16 = 16;
pub(crate) const RTM_DELLINK: u16 = 17;
pub(crate) const RTM_GETLINK: u16 = 18;
pub(crate) const RTM_SETLINK: u16 = 19;
pub(crate) const RTM_NEWADDR: u16 = 20;
pub(crate) const RTM_GETADDR: u16 = 22;
pub(crate) const RTM_NEWROUTE: u16 = 24;
pub(crate) const RTM_DELROUTE: u16 = 25;
pub(crate) const RTM_NEWNEIGH: u16 = 28;
pub(crate) const RTM_DELNEIGH: u16 = 29;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
// flags
pub(crate) const NLM_F_REQUEST: u16 = 1;
pub(crate) const NLM_F_ACK: u16 = 4;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_REPLACE: u16 = 0x100;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
const NLA_F_NESTED: u16 = 0x8000;
const HDR: usize = 16;

/// A request being built: the netlink header, a family header, then attributes.
pub(crate) struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

impl Msg {
    pub(crate) fn new(ty: u16, flags: u16) -> Msg {
        let mut buf = vec![0u8; HDR];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    /// `struct ifinfomsg`.
    pub(crate) fn ifinfo(mut self, index: u32, flags: u32, change: u32) -> Msg {
        self.buf.extend_from_slice(&[0, 0, 0, 0]); // family, pad, type
        self.buf.extend_from_slice(&(index as i32).to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
        self
    }

    /// `struct ifaddrmsg`.
    pub(crate) fn ifaddr(mut self, family: u8, prefix: u8, index: u32) -> Msg {
        self.buf.extend_from_slice(&[family, prefix, 0, 0]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self
    }

    /// `struct rtmsg` for a static unicast route in the main table.
    pub(crate) fn rtmsg(mut self, family: u8, dst_len: u8, scope: u8) -> Msg {
        // family, dst_len, src_len, tos, table=main, protocol=static, scope, type=unicast
        self.buf
            .extend_from_slice(&[family, dst_len, 0, 0, 254, 4, scope, 1]);
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self
    }

    /// `struct ndmsg` for a permanent proxy (ARP/NDP) entry on link `index`.
    pub(crate) fn ndmsg_proxy(mut self, family: u8, index: u32) -> Msg {
        // family, pad1, pad2, ifindex, state=NUD_PERMANENT (0x80), flags=NTF_PROXY (0x08), type
        self.buf.extend_from_slice(&[family, 0, 0, 0]);
        self.buf.extend_from_slice(&(index as i32).to_ne_bytes());
        self.buf.extend_from_slice(&0x80u16.to_ne_bytes());
        self.buf.extend_from_slice(&[0x08, 0]);
        self
    }

    pub(crate) fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Msg {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    pub(crate) fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Msg {
        self.attr(ty, &v.to_ne_bytes())
    }

    pub(crate) fn attr_str(&mut self, ty: u16, s: &str) -> &mut Msg {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(ty, &v)
    }

    pub(crate) fn begin(&mut self, ty: u16) -> &mut Msg {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }

    /// Starts a nested attribute that holds a whole `ifinfomsg` (a veth's peer).
    pub(crate) fn begin_peer(&mut self, ty: u16) -> &mut Msg {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&[0u8; 16]);
        self
    }

    pub(crate) fn end(&mut self) -> &mut Msg {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// One reply message: its type and everything after the netlink header.
pub(crate) struct Reply {
    pub(crate) ty: u16,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// The attributes after a family header of `header_len` bytes: (type, payload).
    pub(crate) fn attrs(&self, header_len: usize) -> Vec<(u16, &[u8])> {
        attrs(self.body.get(header_len..).unwrap_or(&[]))
    }

    pub(crate) fn u32_at(&self, off: usize) -> u32 {
        self.body
            .get(off..off + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
            .unwrap_or(0)
    }

    pub(crate) fn u8_at(&self, off: usize) -> u8 {
        self.body.get(off).copied().unwrap_or(0)
    }
}

/// The attributes of `data`: (type without the nested flag, payload).
pub(crate) fn attrs(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let ty = u16::from_ne_bytes([data[2], data[3]]) & !NLA_F_NESTED;
        if len < 4 || len > data.len() {
            break;
        }
        out.push((ty, &data[4..len]));
        data = &data[align(len).min(data.len())..];
    }
    out
}

/// A NUL-terminated attribute as text.
pub(crate) fn text(v: &[u8]) -> String {
    let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// A route netlink socket bound in the caller's network namespace (the one it acts on).
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    pub fn open() -> Result<Netlink, NetError> {
        use nix::sys::socket::{
            bind, socket, AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType,
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|e| NetError::Socket(e.into()))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(|e| NetError::Socket(e.into()))?;
        Ok(Netlink {
            fd,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Sends `msg` and returns the kernel's replies (for a dump, every part); an error reply
    /// becomes `NetError::Kernel` naming `what`.
    pub(crate) fn request(&mut self, msg: Msg, what: &str) -> Result<Vec<Reply>, NetError> {
        use nix::sys::socket::{recv, send, MsgFlags};
        let flags = u16::from_ne_bytes([msg.buf[6], msg.buf[7]]);
        self.seq = self.seq.wrapping_add(1);
        let out = msg.finish(self.seq);
        send(self.fd.as_raw_fd(), &out, MsgFlags::empty())
            .map_err(|e| NetError::Socket(e.into()))?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let acked = flags & NLM_F_ACK != 0;
        let mut replies = Vec::new();
        loop {
            let n = match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(NetError::Socket(e.into())),
            };
            let mut off = 0;
            while off + HDR <= n {
                let b = &self.buf[off..n];
                let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let ty = u16::from_ne_bytes([b[4], b[5]]);
                let seq = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
                if len < HDR || len > b.len() {
                    return Err(NetError::Decode(format!(
                        "{what}: a truncated netlink message"
                    )));
                }
                off += align(len);
                if seq != self.seq {
                    continue;
                }
                match ty {
                    NLMSG_DONE => return Ok(replies),
                    NLMSG_ERROR => {
                        let code = b
                            .get(HDR..HDR + 4)
                            .and_then(|c| c.try_into().ok())
                            .map(i32::from_ne_bytes)
                            .unwrap_or(-libc::EIO);
                        if code == 0 {
                            return Ok(replies);
                        }
                        return Err(NetError::Kernel {
                            what: what.to_string(),
                            source: std::io::Error::from_raw_os_error(-code),
                        });
                    }
                    _ => {
                        replies.push(Reply {
                            ty,
                            body: b[HDR..len].to_vec(),
                        });
                        if !dump && !acked {
                            return Ok(replies);
                        }
                    }
                }
            }
        }
    }
}
