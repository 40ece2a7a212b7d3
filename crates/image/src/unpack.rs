//! Safe unpacking of rootfs tarballs (xz, zstd, gzip or plain tar, by magic): entries are created
//! through directory descriptors opened with O_NOFOLLOW, so no entry can write outside the target
//! (absolute paths and `..` are refused, symlinks already in the tree are never followed); owners,
//! modes, symlinks, hard links, device nodes, xattrs and times are kept.

use anyhow::{anyhow, bail, Context, Result};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{
    fchmodat, fstatat, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

/// `xz -dc FILE` (or zstd, bzip2) as a reader; its exit status is checked at the end of its
/// output, so a corrupt archive is an error, not a short rootfs.
struct DecompressProcess {
    program: &'static str,
    child: std::process::Child,
    out: std::process::ChildStdout,
}

impl DecompressProcess {
    fn spawn(program: &'static str, path: &Path) -> Option<DecompressProcess> {
        let bin = ["/usr/bin", "/bin"]
            .into_iter()
            .map(|d| Path::new(d).join(program))
            .find(|p| p.is_file())?;
        // -T0: xz decompresses multi-block files (`xz -T0` made them) on every core
        let threads: &[&str] = if program == "xz" { &["-T0"] } else { &[] };
        let mut child = std::process::Command::new(bin)
            .args(threads)
            .arg("-dc")
            .arg(path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let out = child.stdout.take()?;
        Some(DecompressProcess {
            program,
            child,
            out,
        })
    }
}

impl Read for DecompressProcess {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.out.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let status = self.child.wait()?;
            if !status.success() {
                let mut err = String::new();
                if let Some(e) = self.child.stderr.as_mut() {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(io::Error::other(format!(
                    "{}: {}",
                    self.program,
                    err.lines().last().unwrap_or("decompression failed").trim()
                )));
            }
        }
        Ok(n)
    }
}

impl Drop for DecompressProcess {
    fn drop(&mut self) {
        // (an unpack that stopped early: the decompressor goes too)
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tarball, decompressed according to its first bytes (not its name).
/// Below this size an xz archive is decompressed in-process rather than by an `xz` beside us.
const SMALL_ARCHIVE: u64 = 256 << 10;

pub fn open_archive(path: &Path) -> Result<Box<dyn Read>> {
    let mut f =
        BufReader::new(File::open(path).with_context(|| format!("open {}", path.display()))?);
    let mut magic = [0u8; 6];
    let mut got = 0;
    while got < magic.len() {
        let n = f
            .read(&mut magic[got..])
            .with_context(|| format!("read {}", path.display()))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let head = io::Cursor::new(magic[..got].to_vec());
    let stream = head.chain(f);
    let m = &magic[..got];
    // the unpacker reads in small pieces (512-byte headers, 8 KiB of data): a large buffer after
    // the decompressor lets it decompress in large steps
    const OUT_BUF: usize = 1 << 20;
    // a small archive (an image's metadata) is decompressed sooner here than a program starts
    let small = std::fs::metadata(path).is_ok_and(|m| m.len() < SMALL_ARCHIVE);
    Ok(if m.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        // xz decompresses as fast as files can be created: an `xz` process does it beside us
        // (as tar -J does), in-process decompression is the fallback
        match (!small)
            .then(|| DecompressProcess::spawn("xz", path))
            .flatten()
        {
            Some(p) => Box::new(BufReader::with_capacity(OUT_BUF, p)),
            None => Box::new(BufReader::with_capacity(
                OUT_BUF,
                xz2::read::XzDecoder::new_multi_decoder(stream),
            )),
        }
    } else if m.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(
            OUT_BUF,
            flate2::read::MultiGzDecoder::new(stream),
        ))
    } else if m.starts_with(b"BZh") || m.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let program = if m.starts_with(b"BZh") {
            "bzip2"
        } else {
            "zstd"
        };
        match DecompressProcess::spawn(program, path) {
            Some(p) => Box::new(BufReader::with_capacity(OUT_BUF, p)),
            None => bail!(
                "{}: a {program} archive, and {program} is not installed",
                path.display()
            ),
        }
    } else {
        Box::new(stream)
    })
}

/// The components of a path inside the rootfs: `.` and empty ones skipped, absolute paths and
/// `..` refused (a tarball for a rootfs has neither).
pub fn rel_components(raw: &[u8], what: &str) -> Result<Vec<OsString>> {
    if raw.first() == Some(&b'/') {
        bail!(
            "{what} \"{}\" is an absolute path; refusing it",
            String::from_utf8_lossy(raw)
        );
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => continue,
            b".." => bail!(
                "{what} \"{}\" contains \"..\"; refusing it",
                String::from_utf8_lossy(raw)
            ),
            _ => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(out)
}

pub fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// The directory `comps` below `root`, walked one O_NOFOLLOW open at a time so that a symlink (or
/// anything not a directory) on the way is an error instead of a way out of the rootfs. Missing
/// directories are created (0755, root) when `create`.
pub fn open_dir(root: &OwnedFd, comps: &[OsString], create: bool) -> Result<OwnedFd> {
    let mut cur = root
        .try_clone()
        .context("duplicate the rootfs descriptor")?;
    for (i, c) in comps.iter().enumerate() {
        let shown = || {
            comps[..=i]
                .iter()
                .map(|c| c.to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        };
        let next = match openat(&cur, c.as_os_str(), dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if create => {
                match mkdirat(&cur, c.as_os_str(), Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("create directory {}", shown()))
                    }
                }
                openat(&cur, c.as_os_str(), dir_flags(), Mode::empty())
                    .with_context(|| format!("open directory {}", shown()))?
            }
            Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                bail!(
                    "{} is a symlink or not a directory; refusing to write through it",
                    shown()
                )
            }
            Err(e) => return Err(e).with_context(|| format!("open directory {}", shown())),
        };
        cur = next;
    }
    Ok(cur)
}

/// Metadata of one unpacked entry.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

/// Unpacks a rootfs tarball into `rootfs` (an existing, empty directory).
/// The size of the tar stream inside `archive`, where the format tells it cheaply: xz (its index,
/// through `xz --robot --list`), gzip (its trailer, modulo 4 GiB: smaller ones only) and an
/// uncompressed tar. What a progress figure is measured against.
pub fn uncompressed_size(archive: &Path) -> Option<u64> {
    let mut magic = [0u8; 6];
    let mut f = File::open(archive).ok()?;
    let got = f.read(&mut magic).ok()?;
    let len = f.metadata().ok()?.len();
    let m = &magic[..got];
    if m.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        let out = std::process::Command::new("xz")
            .args(["--robot", "--list"])
            .arg(archive)
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("totals\t"))
            .and_then(|t| t.split('\t').nth(3))
            .and_then(|n| n.parse().ok())
    } else if m.starts_with(&[0x1f, 0x8b]) {
        if len >= 1 << 32 {
            return None;
        }
        let mut trailer = [0u8; 4];
        std::io::Seek::seek(&mut f, std::io::SeekFrom::End(-4)).ok()?;
        f.read_exact(&mut trailer).ok()?;
        Some(u32::from_le_bytes(trailer) as u64)
    } else if m.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || m.starts_with(b"BZh") {
        None
    } else {
        Some(len)
    }
}

pub fn unpack_fstree(archive: &Path, rootfs: &Path, no_dev: bool) -> Result<()> {
    unpack_fstree_with_progress(archive, rootfs, no_dev, &mut |_| {})
}

/// [`unpack_fstree`], calling `progress` with the bytes of tar stream done after each entry.
pub fn unpack_fstree_with_progress(
    archive: &Path,
    rootfs: &Path,
    no_dev: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let root: OwnedFd = openat(nix::fcntl::AT_FDCWD, rootfs, dir_flags(), Mode::empty())
        .with_context(|| format!("open {}", rootfs.display()))?;
    let mut ar = tar::Archive::new(open_archive(archive)?);
    let mut dir_times: Vec<(Vec<OsString>, i64)> = Vec::new();
    // the directory the previous entry went into: tarballs list a directory's entries together,
    // so most entries need no walk from the root (directories are never replaced, so the
    // descriptor stays the right one)
    let mut parent_cache: Option<(Vec<OsString>, OwnedFd)> = None;
    let entries = ar
        .entries()
        .with_context(|| format!("read {}", archive.display()))?;
    for entry in entries {
        let mut entry = entry.with_context(|| format!("read {}", archive.display()))?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).to_string();
        unpack_entry(
            &root,
            &mut entry,
            &raw,
            no_dev,
            &mut dir_times,
            &mut parent_cache,
        )
        .with_context(|| format!("{}: entry \"{shown}\"", archive.display()))?;
        progress(entry.raw_file_position() + entry.size());
    }
    // directory times last, deepest first: creating their contents changed them
    for (comps, mtime) in dir_times.iter().rev() {
        let t = TimeSpec::new(*mtime, 0);
        if comps.is_empty() {
            let _ = nix::sys::stat::futimens(&root, &t, &t);
            continue;
        }
        let (name, parent) = comps.split_last().ok_or_else(|| anyhow!("empty path"))?;
        let pfd = open_dir(&root, parent, false)?;
        let _ = utimensat(
            &pfd,
            name.as_os_str(),
            &t,
            &t,
            UtimensatFlags::NoFollowSymlink,
        );
    }
    Ok(())
}

fn unpack_entry<R: Read>(
    root: &OwnedFd,
    entry: &mut tar::Entry<'_, R>,
    raw: &[u8],
    no_dev: bool,
    dir_times: &mut Vec<(Vec<OsString>, i64)>,
    parent_cache: &mut Option<(Vec<OsString>, OwnedFd)>,
) -> Result<()> {
    let comps = rel_components(raw, "path")?;
    if no_dev && comps.len() > 1 && comps[0] == "dev" {
        return Ok(());
    }
    let header = entry.header().clone();
    let kind = header.entry_type();
    let mut xattrs = Vec::new();
    if let Some(exts) = entry.pax_extensions().context("read pax extensions")? {
        for ext in exts {
            let ext = ext.context("read pax extension")?;
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                xattrs.push((
                    OsStr::from_bytes(name).to_os_string(),
                    ext.value_bytes().to_vec(),
                ));
            }
        }
    }
    let meta = Meta {
        uid: u32::try_from(header.uid().context("read uid")?).context("uid out of range")?,
        gid: u32::try_from(header.gid().context("read gid")?).context("gid out of range")?,
        mode: header.mode().context("read mode")? & 0o7777,
        mtime: header.mtime().unwrap_or(0) as i64,
        xattrs,
    };
    let Some((name, parents)) = comps.split_last() else {
        // "./" itself: the rootfs directory's owner and mode
        if kind.is_dir() {
            nix::unistd::fchown(
                root,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .context("set the rootfs owner")?;
            nix::sys::stat::fchmod(root, Mode::from_bits_truncate(meta.mode))
                .context("set the rootfs mode")?;
            dir_times.push((Vec::new(), meta.mtime));
        }
        return Ok(());
    };
    if !matches!(parent_cache, Some((c, _)) if c.as_slice() == parents) {
        *parent_cache = Some((parents.to_vec(), open_dir(root, parents, true)?));
    }
    let Some((_, parent)) = parent_cache.as_ref() else {
        bail!("no parent directory");
    };
    let name = name.as_os_str();
    if kind.is_dir() {
        match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
            Ok(_) => {
                remove_existing(parent, name)?;
                mkdirat(parent, name, Mode::from_bits_truncate(0o700))
                    .context("create directory")?;
            }
            Err(_) => mkdirat(parent, name, Mode::from_bits_truncate(0o700))
                .context("create directory")?,
        }
        set_meta(parent, name, &meta, false)?;
        dir_times.push((comps.clone(), meta.mtime));
        return Ok(());
    }
    remove_existing(parent, name)?;
    if kind.is_symlink() {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| anyhow!("symlink without a target"))?;
        // the target is stored as is: it is resolved inside the container, never here
        symlinkat(OsStr::from_bytes(&target), parent, name).context("create symlink")?;
        set_meta(parent, name, &meta, true)?;
    } else if kind.is_hard_link() {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| anyhow!("hard link without a target"))?;
        let tcomps = rel_components(&target, "hard link target")?;
        let (tname, tparents) = tcomps
            .split_last()
            .ok_or_else(|| anyhow!("hard link to the rootfs itself"))?;
        let tparent = open_dir(root, tparents, false)?;
        // linkat without AT_SYMLINK_FOLLOW links a symlink itself, never what it points to
        linkat(&tparent, tname.as_os_str(), parent, name, AtFlags::empty())
            .with_context(|| format!("link to {}", String::from_utf8_lossy(&target)))?;
    } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
        if no_dev && !kind.is_fifo() {
            // (nodes under dev/ were skipped above, as LXC's excludes-user does)
            bail!(
                "a device node outside /dev in an image for an unprivileged container; refusing it"
            );
        }
        let (sflag, dev) = if kind.is_fifo() {
            (SFlag::S_IFIFO, 0)
        } else {
            let major = header
                .device_major()
                .context("read device major")?
                .unwrap_or(0);
            let minor = header
                .device_minor()
                .context("read device minor")?
                .unwrap_or(0);
            let f = if kind.is_character_special() {
                SFlag::S_IFCHR
            } else {
                SFlag::S_IFBLK
            };
            (
                f,
                nix::sys::stat::makedev(u64::from(major), u64::from(minor)),
            )
        };
        if no_dev {
            // (nodes under dev/ were skipped above, as LXC's excludes-user does)
            bail!(
                "a device node outside /dev in an image for an unprivileged container; refusing it"
            );
        }
        mknodat(parent, name, sflag, Mode::from_bits_truncate(0o600), dev)
            .context("create device node")?;
        set_meta(parent, name, &meta, false)?;
    } else if kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse() {
        let fd = openat(
            parent,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .context("create file")?;
        let mut f = File::from(fd);
        io::copy(entry, &mut f).context("write file")?;
        f.flush().context("write file")?;
        set_meta(parent, name, &meta, false)?;
    } else {
        bail!("unsupported tar entry type {:?}", kind);
    }
    Ok(())
}

/// Removes a non-directory already at `name` (a later entry replaces an earlier one, as tar does).
fn remove_existing(parent: &OwnedFd, name: &OsStr) -> Result<()> {
    match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
            bail!("a directory is in the way")
        }
        Ok(_) => {
            unlinkat(parent, name, UnlinkatFlags::NoRemoveDir).context("replace the existing entry")
        }
        Err(_) => Ok(()),
    }
}

/// Owner, then mode (chown drops setuid bits), then xattrs (chown drops file capabilities), then
/// the modification time; nothing follows a symlink.
fn set_meta(parent: &OwnedFd, name: &OsStr, m: &Meta, is_symlink: bool) -> Result<()> {
    fchownat(
        parent,
        name,
        Some(Uid::from_raw(m.uid)),
        Some(Gid::from_raw(m.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .context("set owner")?;
    if !is_symlink {
        // the entry was just created by us as a non-symlink in a directory held open
        fchmodat(
            parent,
            name,
            Mode::from_bits_truncate(m.mode),
            FchmodatFlags::FollowSymlink,
        )
        .context("set mode")?;
    }
    if !m.xattrs.is_empty() {
        // through /proc/self/fd the directory is the one we hold; lsetxattr doesn't follow `name`
        let path = Path::new("/proc/self/fd")
            .join(parent.as_fd().as_raw_fd().to_string())
            .join(name);
        for (k, v) in &m.xattrs {
            xattr::set(&path, k, v)
                .with_context(|| format!("set xattr {}", k.to_string_lossy()))?;
        }
    }
    let t = TimeSpec::new(m.mtime, 0);
    utimensat(parent, name, &t, &t, UtimensatFlags::NoFollowSymlink).context("set mtime")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncompressed_size_of_xz_gzip_and_plain_tar() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let plain = tmp.path().join("a.tar");
        std::fs::write(&plain, vec![7u8; 10240]).expect("write");
        assert_eq!(uncompressed_size(&plain), Some(10240));
        for (tool, ext) in [("xz", "xz"), ("gzip", "gz")] {
            let out = std::process::Command::new(tool)
                .args(["-k", "-f"])
                .arg(&plain)
                .status();
            if !out.is_ok_and(|s| s.success()) {
                continue;
            }
            let packed = tmp.path().join(format!("a.tar.{ext}"));
            assert_eq!(uncompressed_size(&packed), Some(10240), "{tool}");
        }
        assert_eq!(uncompressed_size(&tmp.path().join("nope")), None);
    }
}
