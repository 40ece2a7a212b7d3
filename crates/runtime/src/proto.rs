//! The monitor's command socket: names, the JSON-lines protocol, and the client side of it.
//!
//! One abstract AF_UNIX stream socket per container, `@warren/<lxcpath>/<name>/command` (a hashed
//! name when too long), distinct from LXC's `@<lxcpath>/<name>/command` so both run side by side.
//! Each connection carries one request line and one response line; a descriptor (init's pidfd) may
//! ride along the response as SCM_RIGHTS. A `console` connection then becomes the console stream.

use serde::{Deserialize, Serialize};
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::path::{Path, PathBuf};

use crate::spec::NsKind;

/// Container states, with LXC's names.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Stopped,
    Starting,
    Running,
    Stopping,
    Aborting,
    Freezing,
    Frozen,
    Thawed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Stopped => "STOPPED",
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Stopping => "STOPPING",
            State::Aborting => "ABORTING",
            State::Freezing => "FREEZING",
            State::Frozen => "FROZEN",
            State::Thawed => "THAWED",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        Some(match s.to_ascii_uppercase().as_str() {
            "STOPPED" => State::Stopped,
            "STARTING" => State::Starting,
            "RUNNING" => State::Running,
            "STOPPING" => State::Stopping,
            "ABORTING" => State::Aborting,
            "FREEZING" => State::Freezing,
            "FROZEN" => State::Frozen,
            "THAWED" => State::Thawed,
            _ => return None,
        })
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request to the monitor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// State, init pid and what attach needs to join the container.
    Info,
    /// Like `Info`, plus init's pidfd as SCM_RIGHTS.
    InitPidfd,
    /// Clean stop (halt signal, then SIGKILL after `timeout` seconds; negative waits forever), or
    /// kill now. The connection is closed when the container has stopped.
    Stop {
        timeout: i64,
        kill: bool,
    },
    /// Send the reboot signal; the monitor restarts the container when init exits.
    Reboot,
    Freeze,
    Unfreeze,
    /// Attach to tty `tty` (0 = the console). The connection becomes the terminal's byte stream.
    Console {
        tty: u32,
        rows: u16,
        cols: u16,
    },
    /// The console ring buffer's contents; `clear` empties it after reading.
    ConsoleLog {
        clear: bool,
    },
    /// Block until the container is in one of `states` (STOPPED is reported by the socket closing).
    Wait {
        states: Vec<State>,
    },
    /// Supervise the mount calls of an attached process: its seccomp listener is descriptor `fd`
    /// of host pid `pid`, which waits until this is answered.
    AdoptGuard {
        pid: i32,
        fd: i32,
    },
    /// `lxc-cgroup`: read cgroupfs file `key` of the container's cgroup (the answer's `data`), or
    /// write `value` to it. Device rules (`devices.allow`/`devices.deny`) go where the container's
    /// device policy lives: the v1 controller, or its cgroup2 program, rebuilt with the new rule.
    Cgroup {
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    },
}

/// The monitor's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<InitInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Response {
    pub fn ok() -> Response {
        Response {
            ok: true,
            ..Default::default()
        }
    }

    pub fn error(msg: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(msg.into()),
            ..Default::default()
        }
    }
}

/// What a client needs to know about a running container's init.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InitInfo {
    pub pid: i32,
    pub state: Option<State>,
    /// Namespaces the container has of its own (attach enters these).
    pub namespaces: Vec<NsKind>,
    /// The payload cgroup in every hierarchy (host paths).
    pub cgroup_paths: Vec<PathBuf>,
    /// The payload cgroup's name relative to the hierarchy roots.
    pub cgroup_name: String,
    /// `lxc.environment` of the container.
    pub environment: Vec<(String, String)>,
    /// Number of ttys (`lxc.tty.max`).
    pub ttys: u32,
    /// The monitor's pid.
    pub monitor_pid: i32,
    /// Whether the container has a user namespace.
    pub unprivileged: bool,
    /// What attached processes are restricted to, as init is: `lxc.cap.drop` / `lxc.cap.keep`,
    /// `lxc.no_new_privs`, `lxc.seccomp.profile` (a host path).
    #[serde(default)]
    pub cap_drop: Vec<String>,
    #[serde(default)]
    pub cap_keep: Vec<String>,
    #[serde(default)]
    pub no_new_privs: bool,
    #[serde(default)]
    pub seccomp_profile: Option<PathBuf>,
    /// The compiled filter init got (attach installs the same).
    #[serde(default)]
    pub seccomp_bpf: Option<Vec<u8>>,
    /// Init's mount calls are supervised; attached processes get mount calls refused.
    #[serde(default)]
    pub mount_guard: bool,
    /// The host sides of its veths (what `lxc-info` shows as its links).
    #[serde(default)]
    pub host_links: Vec<String>,
}

/// FNV-1a, 64 bits: a stable short hash for names that must fit (sockets, cgroups).
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The abstract socket name of a container's monitor (without the leading NUL).
pub fn socket_name(lxcpath: &Path, name: &str) -> String {
    let full = format!("warren/{}/{}/command", lxcpath.display(), name);
    // sun_path holds 108 bytes including the leading NUL of an abstract name
    if full.len() <= 100 {
        full
    } else {
        let h = fnv1a64(format!("{}/{}", lxcpath.display(), name).as_bytes());
        format!("warren/{h:016x}/command")
    }
}

/// The abstract socket address of a container's monitor.
pub fn socket_addr(lxcpath: &Path, name: &str) -> io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(socket_name(lxcpath, name).as_bytes())
}

/// Connect to a container's monitor; `Ok(None)` when no monitor listens (the container is stopped).
pub fn connect(lxcpath: &Path, name: &str) -> io::Result<Option<UnixStream>> {
    let addr = socket_addr(lxcpath, name)?;
    match UnixStream::connect_addr(&addr) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Send one request line.
pub fn send_request(stream: &mut UnixStream, req: &Request) -> io::Result<()> {
    let mut line = serde_json::to_vec(req).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

/// Read one line (up to `\n`) byte by byte, so nothing after it is consumed from the stream, and
/// collect any descriptors that arrived with it.
pub fn read_line_with_fds(stream: &UnixStream) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut line = Vec::new();
    let mut fds = Vec::new();
    // the first byte with its control data (descriptors travel with the line's first write),
    // the rest by peeking for the newline: a handful of calls instead of one per byte
    let mut byte = [0u8; 1];
    let n = warren_sys::recv_with_fds(stream.as_fd(), &mut byte, &mut fds)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "monitor closed the connection",
        ));
    }
    if byte[0] == b'\n' {
        return Ok((line, fds));
    }
    line.push(byte[0]);
    loop {
        match take_line_chunk(stream, &mut line)? {
            Chunk::Done => break,
            Chunk::Eof => break,
            Chunk::More => {}
        }
        if line.len() > 1 << 20 {
            return Err(io::Error::other("command line too long"));
        }
    }
    Ok((line, fds))
}

enum Chunk {
    /// The newline was read (and dropped from `line`).
    Done,
    More,
    Eof,
}

/// Appends to `line` what has arrived up to and including the next newline, never more: what
/// follows a line (a console client's keystrokes) is not the reader's to consume.
fn take_line_chunk(stream: &UnixStream, line: &mut Vec<u8>) -> io::Result<Chunk> {
    use nix::sys::socket::{recv, MsgFlags};
    let mut buf = [0u8; 4096];
    let n = loop {
        match recv(stream.as_raw_fd(), &mut buf, MsgFlags::MSG_PEEK) {
            Ok(n) => break n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if n == 0 {
        return Ok(Chunk::Eof);
    }
    let (take, newline) = match buf[..n].iter().position(|b| *b == b'\n') {
        Some(i) => (i + 1, true),
        None => (n, false),
    };
    // (SCM_RIGHTS sent along are discarded by the kernel: recv takes no control data)
    let got = recv(stream.as_raw_fd(), &mut buf[..take], MsgFlags::empty())?;
    line.extend_from_slice(&buf[..got]);
    if newline && got == take {
        line.pop();
        return Ok(Chunk::Done);
    }
    Ok(Chunk::More)
}

/// Read one request line (at most 64 KiB) that must have arrived by `deadline`: the monitor reads
/// with this, so a peer that dribbles its request can't hold the monitor up.
pub fn read_line_deadline(
    stream: &UnixStream,
    deadline: std::time::Instant,
) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        if std::time::Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request not sent in time",
            ));
        }
        match take_line_chunk(stream, &mut line)? {
            Chunk::Done => return Ok(line),
            Chunk::Eof => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ))
            }
            Chunk::More => {}
        }
        if line.len() > 64 * 1024 {
            return Err(io::Error::other("request too long"));
        }
    }
}

/// Read one response line.
pub fn read_response(stream: &mut UnixStream) -> io::Result<(Response, Vec<OwnedFd>)> {
    let (line, fds) = read_line_with_fds(stream)?;
    let resp = serde_json::from_slice(&line)
        .map_err(|e| io::Error::other(format!("bad answer from the monitor: {e}")))?;
    Ok((resp, fds))
}

/// Write one response line, with descriptors attached.
pub fn write_response(stream: &UnixStream, resp: &Response, fds: &[RawFd]) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let mut line = serde_json::to_vec(resp).map_err(io::Error::other)?;
    line.push(b'\n');
    let fd = stream.as_raw_fd();
    let mut sent = 0;
    while sent < line.len() {
        let iov = [IoSlice::new(&line[sent..])];
        let n = if sent == 0 && !fds.is_empty() {
            let cmsg = [ControlMessage::ScmRights(fds)];
            sendmsg::<()>(fd, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
        } else {
            sendmsg::<()>(fd, &iov, &[], MsgFlags::MSG_NOSIGNAL, None)
        }
        .map_err(io::Error::from)?;
        sent += n;
    }
    Ok(())
}

/// One request, one response: the common case of every short command.
pub fn call(
    lxcpath: &Path,
    name: &str,
    req: &Request,
) -> io::Result<Option<(Response, Vec<OwnedFd>)>> {
    let Some(mut s) = connect(lxcpath, name)? else {
        return Ok(None);
    };
    send_request(&mut s, req)?;
    read_whole_response(&s).map(Some)
}

/// Read a response that is the last thing on its connection, in large reads (a response can
/// carry a few KiB, such as the seccomp program; `read_response` goes byte by byte so that it
/// never consumes what follows the line, which only a console connection needs).
pub fn read_whole_response(stream: &UnixStream) -> io::Result<(Response, Vec<OwnedFd>)> {
    let mut data = Vec::new();
    let mut fds = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while !data.contains(&b'\n') {
        let n = warren_sys::recv_with_fds(stream.as_fd(), &mut buf, &mut fds)?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        if data.len() > 16 << 20 {
            return Err(io::Error::other("answer too long"));
        }
    }
    let end = data.iter().position(|b| *b == b'\n').ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "monitor closed the connection",
        )
    })?;
    let resp = serde_json::from_slice(&data[..end])
        .map_err(|e| io::Error::other(format!("bad answer from the monitor: {e}")))?;
    Ok((resp, fds))
}

/// Block until the monitor closes the connection (the container stopped).
pub fn wait_closed(stream: &mut UnixStream) -> io::Result<()> {
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// A stream from an owned descriptor (used by the monitor for accepted connections).
pub fn stream_from(fd: OwnedFd) -> UnixStream {
    UnixStream::from(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_names_are_warren_own_and_bounded() {
        let n = socket_name(Path::new("/var/lib/lxc"), "c1");
        assert_eq!(n, "warren//var/lib/lxc/c1/command");
        let long = "x".repeat(200);
        let n = socket_name(Path::new(&long), "c1");
        assert!(n.len() <= 100 && n.starts_with("warren/"));
        assert_ne!(
            socket_name(Path::new(&long), "c1"),
            socket_name(Path::new(&long), "c2")
        );
    }

    #[test]
    fn requests_round_trip_as_json_lines() {
        let r = Request::Stop {
            timeout: 5,
            kill: false,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, r#"{"cmd":"stop","timeout":5,"kill":false}"#);
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
        assert_eq!(State::parse("running"), Some(State::Running));
    }
}
