//! proxy devices: `listen` and `connect` (`tcp:ADDR:PORT` or `unix:PATH`), `bind=host` (the
//! default: listen on the host, connect inside the instance's network namespace) or
//! `bind=container` (listen inside, connect on the host), relayed by warrend's threads while the
//! instance runs. Unix paths inside the instance are resolved in its rootfs (RESOLVE_IN_ROOT).
//! [`Proxies::ensure`] makes the listeners match the running instances' devices.

use crate::db::{Instance, Profile};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Tcp(String),
    Unix(String),
}

pub fn parse_endpoint(v: &str) -> Result<Endpoint, String> {
    if let Some(a) = v.strip_prefix("tcp:") {
        let ok = a.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !ok {
            return Err(format!("\"{v}\": tcp:ADDRESS:PORT"));
        }
        return Ok(Endpoint::Tcp(a.to_string()));
    }
    if let Some(p) = v.strip_prefix("unix:") {
        if !p.starts_with('/') || p.split('/').any(|c| c == "..") {
            return Err(format!("\"{v}\": unix:/ABSOLUTE/PATH"));
        }
        return Ok(Endpoint::Unix(p.to_string()));
    }
    Err(format!("\"{v}\": tcp:ADDRESS:PORT or unix:/PATH"))
}

/// Validates a proxy device's config.
pub fn check(dev: &Value) -> Result<(), String> {
    const KEYS: &[&str] = &["type", "listen", "connect", "bind"];
    if let Some(k) = dev
        .as_object()
        .and_then(|m| m.keys().find(|k| !KEYS.contains(&k.as_str())))
    {
        return Err(format!(
            "unknown proxy option \"{k}\" (warren has: listen, connect, bind)"
        ));
    }
    let get = |k: &str| dev.get(k).and_then(Value::as_str).unwrap_or("");
    parse_endpoint(get("listen")).map_err(|e| format!("listen {e}"))?;
    parse_endpoint(get("connect")).map_err(|e| format!("connect {e}"))?;
    if !matches!(get("bind"), "" | "host" | "container") {
        return Err(format!("bind \"{}\": host or container", get("bind")));
    }
    Ok(())
}

/// One running listener: stopped by its flag.
struct Running {
    spec: Value,
    stop: Arc<AtomicBool>,
}

#[derive(Default)]
pub struct Proxies {
    running: Mutex<HashMap<(String, String), Running>>,
}

/// Enters the network namespace of `pid` on this thread only.
fn enter_netns(pid: i32) -> std::io::Result<()> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
}

/// A path inside the instance's rootfs as a descriptor path (`/proc/self/fd/N`), never leaving it.
fn in_rootfs(rootfs: &Path, path: &str) -> std::io::Result<(std::os::fd::OwnedFd, PathBuf)> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use std::os::fd::AsRawFd;
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(&root, path.trim_start_matches('/'), how)?;
    let p = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    Ok((fd, p))
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn split(&self) -> std::io::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
        Ok(match self {
            Stream::Tcp(s) => (Box::new(s.try_clone()?), Box::new(s.try_clone()?)),
            Stream::Unix(s) => (Box::new(s.try_clone()?), Box::new(s.try_clone()?)),
        })
    }
    fn close(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

/// Where connections go: `inside` the instance (its netns, its rootfs for unix paths) or not.
#[derive(Clone)]
struct Target {
    endpoint: Endpoint,
    inside: Option<(i32, PathBuf)>,
}

fn dial(t: &Target) -> std::io::Result<Stream> {
    let connect = || -> std::io::Result<Stream> {
        match &t.endpoint {
            Endpoint::Tcp(a) => Ok(Stream::Tcp(TcpStream::connect(a)?)),
            Endpoint::Unix(p) => match &t.inside {
                Some((_, rootfs)) => {
                    let (_fd, path) = in_rootfs(rootfs, p)?;
                    Ok(Stream::Unix(UnixStream::connect(path)?))
                }
                None => Ok(Stream::Unix(UnixStream::connect(p)?)),
            },
        }
    };
    match (&t.endpoint, &t.inside) {
        // a thread of its own: setns changes only the calling thread's namespace
        (Endpoint::Tcp(_), Some((pid, _))) => {
            let (pid, t2) = (*pid, t.clone());
            std::thread::spawn(move || {
                enter_netns(pid)?;
                match &t2.endpoint {
                    Endpoint::Tcp(a) => Ok(Stream::Tcp(TcpStream::connect(a)?)),
                    Endpoint::Unix(_) => Err(std::io::Error::other("unreachable")),
                }
            })
            .join()
            .map_err(|_| std::io::Error::other("proxy dial thread"))?
        }
        _ => connect(),
    }
}

fn relay(a: Stream, b: Stream) {
    let (Ok((mut ar, mut aw)), Ok((mut br, mut bw))) = (a.split(), b.split()) else {
        return;
    };
    let there = std::thread::spawn(move || {
        let _ = std::io::copy(&mut ar, &mut bw);
        b.close();
    });
    let _ = std::io::copy(&mut br, &mut aw);
    a.close();
    let _ = there.join();
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, Option<PathBuf>),
}

fn listen(e: &Endpoint, inside: Option<(i32, PathBuf)>) -> std::io::Result<Listener> {
    match (e, inside) {
        (Endpoint::Tcp(a), None) => Ok(Listener::Tcp(TcpListener::bind(a)?)),
        (Endpoint::Tcp(a), Some((pid, _))) => {
            let a = a.clone();
            std::thread::spawn(move || {
                enter_netns(pid)?;
                TcpListener::bind(a)
            })
            .join()
            .map_err(|_| std::io::Error::other("proxy listen thread"))?
            .map(Listener::Tcp)
        }
        (Endpoint::Unix(p), None) => {
            let _ = std::fs::remove_file(p);
            Ok(Listener::Unix(
                UnixListener::bind(p)?,
                Some(PathBuf::from(p)),
            ))
        }
        (Endpoint::Unix(p), Some((_, rootfs))) => {
            // the socket is made in its directory, resolved inside the rootfs
            let (dir, name) = match p.rsplit_once('/') {
                Some((d, n)) => (if d.is_empty() { "/" } else { d }, n),
                None => ("/", p.as_str()),
            };
            let (_fd, dir) = in_rootfs(&rootfs, dir)?;
            let path = dir.join(name);
            let _ = std::fs::remove_file(&path);
            Ok(Listener::Unix(UnixListener::bind(&path)?, None))
        }
    }
}

fn serve(listener: Listener, target: Target, stop: Arc<AtomicBool>) {
    let poll_accept = |fd: std::os::fd::BorrowedFd<'_>| {
        let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
        matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(200u16)), Ok(n) if n > 0)
    };
    while !stop.load(Ordering::SeqCst) {
        use std::os::fd::AsFd;
        let accepted = match &listener {
            Listener::Tcp(l) => {
                if !poll_accept(l.as_fd()) {
                    continue;
                }
                l.accept().map(|(s, _)| Stream::Tcp(s))
            }
            Listener::Unix(l, _) => {
                if !poll_accept(l.as_fd()) {
                    continue;
                }
                l.accept().map(|(s, _)| Stream::Unix(s))
            }
        };
        let Ok(client) = accepted else { continue };
        let t = target.clone();
        std::thread::spawn(move || match dial(&t) {
            Ok(server) => relay(client, server),
            Err(e) => {
                crate::log::warn(&format!("proxy: connect {:?}: {e}", t.endpoint));
                client.close();
            }
        });
    }
    if let Listener::Unix(_, Some(path)) = &listener {
        let _ = std::fs::remove_file(path);
    }
}

impl Proxies {
    /// Starts the listeners of running instances' proxy devices that aren't there, and stops
    /// those whose instance stopped or whose device went or changed.
    pub fn ensure(&self, dir: &Path, profiles: &[Profile], instances: &[Instance]) {
        let mut wanted: HashMap<(String, String), (Value, i32)> = HashMap::new();
        for i in instances {
            let info = crate::instances::live(dir, &i.name);
            let Some(pid) = info
                .filter(|x| x.state.map(|s| s.as_str() == "RUNNING").unwrap_or(false))
                .map(|x| x.pid)
            else {
                continue;
            };
            let devices = crate::instances::expanded_devices(profiles, i);
            for (dev, d) in devices.as_object().into_iter().flatten() {
                if d.get("type").and_then(Value::as_str) == Some("proxy") {
                    wanted.insert((i.name.clone(), dev.clone()), (d.clone(), pid));
                }
            }
        }
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        running.retain(|key, r| {
            let keep = wanted.get(key).is_some_and(|(spec, _)| *spec == r.spec);
            if !keep {
                r.stop.store(true, Ordering::SeqCst);
            }
            keep
        });
        for (key, (spec, pid)) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let get = |k: &str| {
                spec.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let (Ok(l), Ok(c)) = (
                parse_endpoint(&get("listen")),
                parse_endpoint(&get("connect")),
            ) else {
                continue;
            };
            let rootfs = crate::instances::lxcpath(dir).join(&key.0).join("rootfs");
            let inside = Some((pid, rootfs));
            let (listen_in, connect_in) = if get("bind") == "container" {
                (inside, None)
            } else {
                (None, inside)
            };
            match listen(&l, listen_in) {
                Ok(listener) => {
                    let stop = Arc::new(AtomicBool::new(false));
                    let target = Target {
                        endpoint: c,
                        inside: connect_in,
                    };
                    let s = stop.clone();
                    std::thread::spawn(move || serve(listener, target, s));
                    running.insert(key, Running { spec, stop });
                }
                Err(e) => crate::log::error(&format!(
                    "proxy {} of {}: listen {}: {e}",
                    key.1,
                    key.0,
                    get("listen")
                )),
            }
        }
    }
}
