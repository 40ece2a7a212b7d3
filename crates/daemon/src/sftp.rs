//! `GET /1.0/instances/<name>/sftp` (Upgrade: sftp): an SFTP v3 server over the upgraded
//! connection, as incus 6.0.4's `file push/pull/delete` speak it. Every path is resolved inside
//! the container's rootfs (openat2 RESOLVE_IN_ROOT, the last component never followed where the
//! operation is on the link itself), and owners are mapped through the container's id map.

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

const OK: u32 = 0;
const EOF: u32 = 1;
const NO_SUCH_FILE: u32 = 2;
const PERMISSION_DENIED: u32 = 3;
const FAILURE: u32 = 4;
const OP_UNSUPPORTED: u32 = 8;

/// The container's rootfs and how its ids map to the host's.
pub struct Root {
    fd: OwnedFd,
    /// Host id of container id 0 (0 for a privileged container), and the map's size.
    base: u32,
    size: u32,
}

impl Root {
    /// The rootfs of the container whose directory is `cdir` (its overlay mounted when missing),
    /// with the ids its files carry on disk.
    pub fn of_container(cdir: &std::path::Path) -> std::io::Result<Root> {
        let rootfs = crate::rootfs::ensure(cdir).map_err(std::io::Error::other)?;
        let base = crate::rootfs::id_base(cdir);
        let size = if base == 0 {
            u32::MAX
        } else {
            crate::instances::IDMAP_SIZE as u32
        };
        Root::open(&rootfs, base, size)
    }

    pub fn open(rootfs: &std::path::Path, base: u32, size: u32) -> std::io::Result<Root> {
        let fd = nix::fcntl::open(
            rootfs,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd, base, size })
    }

    fn to_host(&self, id: u32) -> Option<u32> {
        (id < self.size).then(|| self.base + id)
    }

    pub(crate) fn to_container(&self, id: u32) -> u32 {
        if id >= self.base && id - self.base < self.size {
            id - self.base
        } else {
            65534
        }
    }

    pub(crate) fn resolve(&self, path: &str, flags: OFlag, mode: u32) -> nix::Result<OwnedFd> {
        let rel = path.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        let mut how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        // openat2 refuses a mode without O_CREAT
        if flags.contains(OFlag::O_CREAT) {
            how = how.mode(Mode::from_bits_truncate(mode));
        }
        openat2(&self.fd, rel, how)
    }

    /// The parent directory (resolved in the root) and the last component.
    pub(crate) fn parent(&self, path: &str) -> nix::Result<(OwnedFd, String)> {
        let p = path.trim_end_matches('/');
        let (dir, name) = match p.rsplit_once('/') {
            Some((d, n)) => (if d.is_empty() { "/" } else { d }, n),
            None => ("/", p),
        };
        if name.is_empty() || name == "." || name == ".." {
            return Err(nix::errno::Errno::EINVAL);
        }
        Ok((
            self.resolve(dir, OFlag::O_PATH | OFlag::O_DIRECTORY, 0)?,
            name.to_string(),
        ))
    }
}

struct Packet {
    data: Vec<u8>,
    pos: usize,
}

impl Packet {
    fn u8(&mut self) -> Option<u8> {
        let v = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }
    fn u32(&mut self) -> Option<u32> {
        let b = self.data.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let hi = self.u32()? as u64;
        Some((hi << 32) | self.u32()? as u64)
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        let b = self.data.get(self.pos..self.pos.checked_add(n)?)?.to_vec();
        self.pos += n;
        Some(b)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?).ok()
    }
    fn attrs(&mut self) -> Option<Attrs> {
        let flags = self.u32()?;
        let mut a = Attrs::default();
        if flags & 0x1 != 0 {
            a.size = Some(self.u64()?);
        }
        if flags & 0x2 != 0 {
            a.uidgid = Some((self.u32()?, self.u32()?));
        }
        if flags & 0x4 != 0 {
            a.perms = Some(self.u32()?);
        }
        if flags & 0x8 != 0 {
            a.times = Some((self.u32()?, self.u32()?));
        }
        if flags & 0x8000_0000 != 0 {
            for _ in 0..self.u32()? {
                self.bytes()?;
                self.bytes()?;
            }
        }
        Some(a)
    }
}

#[derive(Default)]
pub(crate) struct Attrs {
    pub(crate) size: Option<u64>,
    pub(crate) uidgid: Option<(u32, u32)>,
    pub(crate) perms: Option<u32>,
    pub(crate) times: Option<(u32, u32)>,
}

struct Out(Vec<u8>);

impl Out {
    fn new(kind: u8, id: u32) -> Out {
        let mut v = vec![0, 0, 0, 0, kind];
        v.extend_from_slice(&id.to_be_bytes());
        Out(v)
    }
    fn u32(mut self, v: u32) -> Out {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Out {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn bytes(mut self, b: &[u8]) -> Out {
        self = self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
        self
    }
    fn attrs(self, root: &Root, st: &St) -> Out {
        self.u32(0xf)
            .u64(st.size)
            .u32(root.to_container(st.uid))
            .u32(root.to_container(st.gid))
            .u32(st.mode)
            .u32(st.atime as u32)
            .u32(st.mtime as u32)
    }
    fn finish(mut self) -> Vec<u8> {
        let len = (self.0.len() - 4) as u32;
        self.0[..4].copy_from_slice(&len.to_be_bytes());
        self.0
    }
}

fn status(id: u32, code: u32, msg: &str) -> Vec<u8> {
    Out::new(101, id)
        .u32(code)
        .bytes(msg.as_bytes())
        .bytes(b"en")
        .finish()
}

fn errno_status(id: u32, e: nix::errno::Errno, what: &str) -> Vec<u8> {
    let code = match e {
        nix::errno::Errno::ENOENT => NO_SUCH_FILE,
        nix::errno::Errno::EACCES | nix::errno::Errno::EPERM => PERMISSION_DENIED,
        _ => FAILURE,
    };
    status(id, code, &format!("{what}: {}", e.desc().to_lowercase()))
}

/// What SFTP reports of a file.
pub(crate) struct St {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) size: u64,
    pub(crate) atime: i64,
    pub(crate) mtime: i64,
}

impl St {
    fn of_fd(fd: &impl AsFd) -> nix::Result<St> {
        let s = nix::sys::stat::fstat(fd)?;
        Ok(St {
            mode: s.st_mode,
            uid: s.st_uid,
            gid: s.st_gid,
            size: s.st_size as u64,
            atime: s.st_atime,
            mtime: s.st_mtime,
        })
    }
    fn of_metadata(md: &std::fs::Metadata) -> St {
        St {
            mode: md.mode(),
            uid: md.uid(),
            gid: md.gid(),
            size: md.size(),
            atime: md.atime(),
            mtime: md.mtime(),
        }
    }
}

enum Handle {
    File(std::fs::File),
    Dir(Vec<(String, St)>),
}

/// `path` itself (a symlink is not followed): fstat of an O_PATH descriptor of it.
pub(crate) fn lstat(root: &Root, path: &str) -> nix::Result<St> {
    let fd = match root.parent(path) {
        Ok((dir, name)) => {
            let how = OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_BENEATH);
            openat2(&dir, name.as_str(), how)?
        }
        Err(_) => root.resolve(path, OFlag::O_PATH, 0)?,
    };
    St::of_fd(&fd)
}

pub(crate) fn set_attrs(root: &Root, fd: &OwnedFd, a: &Attrs) -> nix::Result<()> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    if let Some((uid, gid)) = a.uidgid {
        let (u, g) = (
            root.to_host(uid).ok_or(nix::errno::Errno::EINVAL)?,
            root.to_host(gid).ok_or(nix::errno::Errno::EINVAL)?,
        );
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            path.as_str(),
            Some(nix::unistd::Uid::from_raw(u)),
            Some(nix::unistd::Gid::from_raw(g)),
            nix::fcntl::AtFlags::empty(),
        )?;
    }
    if let Some(p) = a.perms {
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            path.as_str(),
            Mode::from_bits_truncate(p & 0o7777),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )?;
    }
    if let Some(size) = a.size {
        if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&path) {
            let _ = f.set_len(size);
        }
    }
    Ok(())
}

/// Serves SFTP on `stream` until the client closes it.
pub fn serve<S: Read + Write>(mut stream: S, root: Root) -> std::io::Result<()> {
    let mut handles: HashMap<u32, Handle> = HashMap::new();
    let mut next = 1u32;
    loop {
        let mut len = [0u8; 4];
        if stream.read_exact(&mut len).is_err() {
            return Ok(());
        }
        let n = u32::from_be_bytes(len) as usize;
        if n == 0 || n > 256 * 1024 {
            return Ok(());
        }
        let mut data = vec![0u8; n];
        stream.read_exact(&mut data)?;
        let mut p = Packet { data, pos: 0 };
        let kind = p.u8().unwrap_or(0);
        if kind == 1 {
            let ext: &[(&[u8], &[u8])] = &[
                (b"posix-rename@openssh.com", b"1"),
                (b"hardlink@openssh.com", b"1"),
            ];
            let mut o = vec![0, 0, 0, 0, 2];
            o.extend_from_slice(&3u32.to_be_bytes());
            let mut out = Out(o);
            for (k, v) in ext {
                out = out.bytes(k).bytes(v);
            }
            stream.write_all(&out.finish())?;
            continue;
        }
        let id = p.u32().unwrap_or(0);
        let reply = handle(&root, &mut handles, &mut next, kind, id, &mut p)
            .unwrap_or_else(|| status(id, FAILURE, "bad message"));
        stream.write_all(&reply)?;
    }
}

fn handle(
    root: &Root,
    handles: &mut HashMap<u32, Handle>,
    next: &mut u32,
    kind: u8,
    id: u32,
    p: &mut Packet,
) -> Option<Vec<u8>> {
    let mut new_handle = |h: Handle, handles: &mut HashMap<u32, Handle>| {
        let n = *next;
        *next += 1;
        handles.insert(n, h);
        Out::new(102, id).bytes(n.to_string().as_bytes()).finish()
    };
    let handle_id = |b: Vec<u8>| {
        String::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
    };
    Some(match kind {
        3 => {
            let (path, pflags, attrs) = (p.string()?, p.u32()?, p.attrs()?);
            let mut flags = match (pflags & 1 != 0, pflags & 2 != 0) {
                (true, true) => OFlag::O_RDWR,
                (false, true) => OFlag::O_WRONLY,
                _ => OFlag::O_RDONLY,
            };
            if pflags & 4 != 0 {
                flags |= OFlag::O_APPEND;
            }
            if pflags & 8 != 0 {
                flags |= OFlag::O_CREAT;
            }
            if pflags & 0x10 != 0 {
                flags |= OFlag::O_TRUNC;
            }
            if pflags & 0x20 != 0 {
                flags |= OFlag::O_EXCL;
            }
            let created = pflags & 8 != 0;
            match root.resolve(
                &path,
                flags | OFlag::O_NOFOLLOW,
                attrs.perms.unwrap_or(0o644) & 0o7777,
            ) {
                Ok(fd) => {
                    if created {
                        // a new file belongs to the container's root, as if the container made it
                        let _ = set_attrs(
                            root,
                            &fd,
                            &Attrs {
                                uidgid: Some(attrs.uidgid.unwrap_or((0, 0))),
                                ..Default::default()
                            },
                        );
                    }
                    new_handle(Handle::File(std::fs::File::from(fd)), handles)
                }
                Err(e) => errno_status(id, e, &format!("open {path}")),
            }
        }
        4 => {
            let h = handle_id(p.bytes()?)?;
            match handles.remove(&h) {
                Some(_) => status(id, OK, ""),
                None => status(id, FAILURE, "bad file descriptor"),
            }
        }
        5 => {
            let (h, offset, len) = (handle_id(p.bytes()?)?, p.u64()?, p.u32()?.min(256 * 1024));
            match handles.get_mut(&h) {
                Some(Handle::File(f)) => {
                    use std::os::unix::fs::FileExt;
                    let mut buf = vec![0u8; len as usize];
                    match f.read_at(&mut buf, offset) {
                        Ok(0) => status(id, EOF, "EOF"),
                        Ok(n) => Out::new(103, id).bytes(&buf[..n]).finish(),
                        Err(e) => status(id, FAILURE, &e.to_string()),
                    }
                }
                _ => status(id, FAILURE, "bad file descriptor"),
            }
        }
        6 => {
            let (h, offset, data) = (handle_id(p.bytes()?)?, p.u64()?, p.bytes()?);
            match handles.get_mut(&h) {
                Some(Handle::File(f)) => {
                    use std::os::unix::fs::FileExt;
                    match f.write_all_at(&data, offset) {
                        Ok(()) => status(id, OK, ""),
                        Err(e) => status(id, FAILURE, &e.to_string()),
                    }
                }
                _ => status(id, FAILURE, "bad file descriptor"),
            }
        }
        7 | 17 => {
            let path = p.string()?;
            let md = if kind == 7 {
                lstat(root, &path)
            } else {
                root.resolve(&path, OFlag::O_PATH, 0)
                    .and_then(|fd| St::of_fd(&fd))
            };
            match md {
                Ok(md) => Out::new(105, id).attrs(root, &md).finish(),
                Err(e) => errno_status(
                    id,
                    e,
                    &format!("{} {path}", if kind == 7 { "lstat" } else { "stat" }),
                ),
            }
        }
        8 => {
            let h = handle_id(p.bytes()?)?;
            match handles.get(&h) {
                Some(Handle::File(f)) => match St::of_fd(f) {
                    Ok(st) => Out::new(105, id).attrs(root, &st).finish(),
                    Err(e) => errno_status(id, e, "fstat"),
                },
                _ => status(id, FAILURE, "bad file descriptor"),
            }
        }
        9 => {
            let (path, attrs) = (p.string()?, p.attrs()?);
            match root
                .resolve(&path, OFlag::O_PATH | OFlag::O_NOFOLLOW, 0)
                .and_then(|fd| set_attrs(root, &fd, &attrs))
            {
                Ok(()) => status(id, OK, ""),
                Err(e) => errno_status(id, e, &format!("setstat {path}")),
            }
        }
        10 => {
            let (h, attrs) = (handle_id(p.bytes()?)?, p.attrs()?);
            match handles.get(&h) {
                Some(Handle::File(f)) => match f.try_clone().map(OwnedFd::from) {
                    Ok(fd) => match set_attrs(root, &fd, &attrs) {
                        Ok(()) => status(id, OK, ""),
                        Err(e) => errno_status(id, e, "fsetstat"),
                    },
                    Err(e) => status(id, FAILURE, &e.to_string()),
                },
                _ => status(id, FAILURE, "bad file descriptor"),
            }
        }
        11 => {
            let path = p.string()?;
            match root.resolve(&path, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0) {
                Ok(fd) => {
                    let dir = format!("/proc/self/fd/{}", fd.as_raw_fd());
                    let mut entries = Vec::new();
                    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                        if let Ok(md) = e.metadata() {
                            entries.push((
                                e.file_name().to_string_lossy().into_owned(),
                                St::of_metadata(&md),
                            ));
                        }
                    }
                    let _ = fd.as_fd();
                    new_handle(Handle::Dir(entries), handles)
                }
                Err(e) => errno_status(id, e, &format!("opendir {path}")),
            }
        }
        12 => {
            let h = handle_id(p.bytes()?)?;
            match handles.get_mut(&h) {
                Some(Handle::Dir(entries)) if entries.is_empty() => status(id, EOF, "EOF"),
                Some(Handle::Dir(entries)) => {
                    let batch: Vec<_> = entries.drain(..entries.len().min(100)).collect();
                    let mut out = Out::new(104, id).u32(batch.len() as u32);
                    for (name, md) in &batch {
                        let long = format!(
                            "{:o} {} {} {} {name}",
                            md.mode,
                            root.to_container(md.uid),
                            root.to_container(md.gid),
                            md.size
                        );
                        out = out
                            .bytes(name.as_bytes())
                            .bytes(long.as_bytes())
                            .attrs(root, md);
                    }
                    out.finish()
                }
                _ => status(id, FAILURE, "bad file descriptor"),
            }
        }
        13 | 15 => {
            let path = p.string()?;
            let flags = if kind == 15 {
                nix::unistd::UnlinkatFlags::RemoveDir
            } else {
                nix::unistd::UnlinkatFlags::NoRemoveDir
            };
            match root
                .parent(&path)
                .and_then(|(dir, name)| nix::unistd::unlinkat(&dir, name.as_str(), flags))
            {
                Ok(()) => status(id, OK, ""),
                Err(e) => errno_status(id, e, &format!("remove {path}")),
            }
        }
        14 => {
            let (path, attrs) = (p.string()?, p.attrs()?);
            let made = root.parent(&path).and_then(|(dir, name)| {
                nix::sys::stat::mkdirat(
                    &dir,
                    name.as_str(),
                    Mode::from_bits_truncate(attrs.perms.unwrap_or(0o755) & 0o7777),
                )?;
                let fd = openat2(
                    &dir,
                    name.as_str(),
                    OpenHow::new().flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC),
                )?;
                set_attrs(
                    root,
                    &fd,
                    &Attrs {
                        uidgid: Some(attrs.uidgid.unwrap_or((0, 0))),
                        ..Default::default()
                    },
                )
            });
            match made {
                Ok(()) => status(id, OK, ""),
                Err(e) => errno_status(id, e, &format!("mkdir {path}")),
            }
        }
        16 => {
            let path = p.string()?;
            let abs = if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            };
            Out::new(104, id)
                .u32(1)
                .bytes(abs.as_bytes())
                .bytes(abs.as_bytes())
                .u32(0)
                .finish()
        }
        18 => {
            let (from, to) = (p.string()?, p.string()?);
            let r = root.parent(&from).and_then(|(fd_dir, fname)| {
                let (td, tname) = root.parent(&to)?;
                nix::fcntl::renameat(&fd_dir, fname.as_str(), &td, tname.as_str())
            });
            match r {
                Ok(()) => status(id, OK, ""),
                Err(e) => errno_status(id, e, &format!("rename {from}")),
            }
        }
        19 => {
            let path = p.string()?;
            match root
                .parent(&path)
                .and_then(|(dir, name)| nix::fcntl::readlinkat(&dir, name.as_str()))
            {
                Ok(target) => {
                    let t = target.to_string_lossy().into_owned();
                    Out::new(104, id)
                        .u32(1)
                        .bytes(t.as_bytes())
                        .bytes(t.as_bytes())
                        .u32(0)
                        .finish()
                }
                Err(e) => errno_status(id, e, &format!("readlink {path}")),
            }
        }
        _ => status(id, OP_UNSUPPORTED, "operation not supported"),
    })
}
