//! The `local` template: a container from an LXC image pair on disk (`--metadata META.tar.xz
//! --fstree ROOTFS.tar.xz`, xz, gzip or plain tar). The fstree is unpacked into the rootfs through
//! directory descriptors opened with O_NOFOLLOW, so no entry can write outside the rootfs (absolute
//! paths and `..` are refused, symlinks already in the rootfs are never followed); owners, modes,
//! symlinks, hard links, device nodes, xattrs and times are kept. The metadata's `config` becomes
//! the container's config lines, its `templates` get LXC_NAME replaced, its `create-message` shown.

use anyhow::{anyhow, bail, Context, Result};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{
    fchmodat, fstatat, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::{TemplateContext, TemplateOutput};

/// Files of the metadata tarball larger than this are not LXC image metadata.
const MAX_META_FILE: u64 = 1 << 20;

struct Options {
    metadata: PathBuf,
    fstree: PathBuf,
    no_dev: bool,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let (mut metadata, mut fstree, mut no_dev) = (None, None, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| -> Result<PathBuf> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .map(PathBuf::from)
                .ok_or_else(|| anyhow!("local template: {name} needs a file"))
        };
        match flag {
            "--metadata" | "-m" => metadata = Some(value("--metadata")?),
            "--fstree" | "-f" => fstree = Some(value("--fstree")?),
            "--no-dev" => no_dev = true,
            "-h" | "--help" => bail!(
                "local template options: --metadata META.tar[.xz|.gz] --fstree ROOTFS.tar[.xz|.gz] [--no-dev]"
            ),
            other => bail!("local template: unknown option \"{other}\" (use --metadata FILE --fstree FILE [--no-dev])"),
        }
    }
    Ok(Options {
        metadata: metadata
            .ok_or_else(|| anyhow!("local template: --metadata META.tar.xz is required"))?,
        fstree: fstree
            .ok_or_else(|| anyhow!("local template: --fstree ROOTFS.tar.xz is required"))?,
        no_dev,
    })
}

pub fn create(ctx: &TemplateContext<'_>) -> Result<TemplateOutput> {
    let opts = parse_args(ctx.args)?;
    let meta = read_metadata(&opts.metadata)?;
    unpack_fstree(&opts.fstree, ctx.rootfs, opts.no_dev)?;
    if let Some(t) = &meta.templates {
        render_templates(ctx.rootfs, t, ctx.name)?;
    }
    let config_lines = match &meta.config {
        Some(c) => map_config(c),
        None => Vec::new(),
    };
    if let Some(msg) = &meta.create_message {
        println!("\n---\n{}", msg.trim_end());
    }
    Ok(TemplateOutput { config_lines })
}

/// `xz -dc FILE` as a reader; its exit status is checked at the end of its output, so a corrupt
/// archive is an error, not a short rootfs.
struct XzProcess {
    child: std::process::Child,
    out: std::process::ChildStdout,
}

impl XzProcess {
    fn spawn(path: &Path) -> Option<XzProcess> {
        let xz = ["/usr/bin/xz", "/bin/xz"]
            .into_iter()
            .find(|p| Path::new(p).is_file())?;
        let mut child = std::process::Command::new(xz)
            .arg("-dc")
            .arg(path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let out = child.stdout.take()?;
        Some(XzProcess { child, out })
    }
}

impl Read for XzProcess {
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
                    "xz: {}",
                    err.lines().last().unwrap_or("decompression failed").trim()
                )));
            }
        }
        Ok(n)
    }
}

impl Drop for XzProcess {
    fn drop(&mut self) {
        // (an unpack that stopped early: the decompressor goes too)
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tarball, decompressed according to its first bytes (not its name).
fn open_archive(path: &Path) -> Result<Box<dyn Read>> {
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
    Ok(if m.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        // xz decompresses as fast as files can be created: an `xz` process does it beside us
        // (as tar -J does), in-process decompression is the fallback
        match XzProcess::spawn(path) {
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
    } else if m.starts_with(b"BZh") {
        bail!(
            "{}: bzip2 archives are not supported (use xz, gzip or plain tar)",
            path.display()
        );
    } else if m.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        bail!(
            "{}: zstd archives are not supported (use xz, gzip or plain tar)",
            path.display()
        );
    } else {
        Box::new(stream)
    })
}

/// What an LXC image's metadata tarball holds that the local template uses.
#[derive(Default)]
struct Metadata {
    config: Option<String>,
    templates: Option<String>,
    create_message: Option<String>,
}

fn read_metadata(path: &Path) -> Result<Metadata> {
    let mut ar = tar::Archive::new(open_archive(path)?);
    let mut meta = Metadata::default();
    let entries = ar
        .entries()
        .with_context(|| format!("read {}", path.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("read {}", path.display()))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_string();
        let slot = match name.as_str() {
            "config" => &mut meta.config,
            "templates" => &mut meta.templates,
            "create-message" => &mut meta.create_message,
            // config-user and excludes-user are for unprivileged containers, not supported yet
            _ => continue,
        };
        let mut text = String::new();
        entry
            .take(MAX_META_FILE)
            .read_to_string(&mut text)
            .with_context(|| format!("read {name} in {}", path.display()))?;
        *slot = Some(text);
    }
    if meta.config.is_none() {
        bail!(
            "{} is not an LXC image metadata tarball: it has no \"config\"",
            path.display()
        );
    }
    Ok(meta)
}

/// The image's config lines for warren: includes of LXC's shared configs
/// (`LXC_TEMPLATE_CONFIG/<distro>.common.conf`, `.userns.conf`, `.seccomp`) become warren's own
/// shipped ones; other references to LXC's template config or hook directories are dropped, with
/// a comment saying so, since warren ships no equivalent.
pub fn map_config(text: &str) -> Vec<String> {
    let dir = warren_lxc_config::WARREN_CONFIG_DIR;
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(idx) = t.find("LXC_TEMPLATE_CONFIG/") {
            let file = t[idx + "LXC_TEMPLATE_CONFIG/".len()..]
                .split_whitespace()
                .next()
                .unwrap_or("");
            let ours = if file.ends_with("common.conf") {
                Some("common.conf")
            } else if file.ends_with("userns.conf") {
                Some("userns.conf")
            } else if file.ends_with(".seccomp") {
                Some("common.seccomp")
            } else {
                None
            };
            match ours {
                Some(o) => out.push(format!("{}{dir}/{o}", &t[..idx])),
                None => out.push(format!(
                    "# dropped (LXC's template config, not shipped by warren): {t}"
                )),
            }
        } else if t.contains("LXC_HOOK_DIR") {
            out.push(format!(
                "# dropped (LXC's hook scripts, not shipped by warren): {t}"
            ));
        } else {
            out.push(line.to_string());
        }
    }
    out
}

/// The components of a path inside the rootfs: `.` and empty ones skipped, absolute paths and
/// `..` refused (a tarball for a rootfs has neither).
fn rel_components(raw: &[u8], what: &str) -> Result<Vec<OsString>> {
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

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// The directory `comps` below `root`, walked one O_NOFOLLOW open at a time so that a symlink (or
/// anything not a directory) on the way is an error instead of a way out of the rootfs. Missing
/// directories are created (0755, root) when `create`.
fn open_dir(root: &OwnedFd, comps: &[OsString], create: bool) -> Result<OwnedFd> {
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
fn unpack_fstree(archive: &Path, rootfs: &Path, no_dev: bool) -> Result<()> {
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

/// LXC_NAME replaced by the container's name in the files the image lists (/etc/hostname,
/// /etc/hosts, ...). Listed files that are missing, or are symlinks, are skipped: a symlink could
/// point anywhere on the host.
fn render_templates(rootfs: &Path, list: &str, name: &str) -> Result<()> {
    let root: OwnedFd = openat(nix::fcntl::AT_FDCWD, rootfs, dir_flags(), Mode::empty())
        .with_context(|| format!("open {}", rootfs.display()))?;
    for line in list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let comps = rel_components(line.trim_start_matches('/').as_bytes(), "template file")?;
        let Some((file, parents)) = comps.split_last() else {
            continue;
        };
        let Ok(dir) = open_dir(&root, parents, false) else {
            continue;
        };
        let ro = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match openat(&dir, file.as_os_str(), ro, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(Errno::ELOOP) => {
                eprintln!(
                    "warning: template file {line} is a symlink; LXC_NAME not replaced in it"
                );
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("open {line} in the rootfs")),
        };
        let mut text = Vec::new();
        File::from(fd)
            .read_to_end(&mut text)
            .with_context(|| format!("read {line} in the rootfs"))?;
        let Ok(s) = String::from_utf8(text) else {
            continue;
        };
        if !s.contains("LXC_NAME") {
            continue;
        }
        let new = s.replace("LXC_NAME", name);
        let wo = OFlag::O_WRONLY | OFlag::O_TRUNC | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&dir, file.as_os_str(), wo, Mode::empty())
            .with_context(|| format!("open {line} in the rootfs"))?;
        File::from(fd)
            .write_all(new.as_bytes())
            .with_context(|| format!("write {line} in the rootfs"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A header for `path` written raw, so the test can make entries tar::Builder refuses.
    fn header(path: &[u8], kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..path.len()].copy_from_slice(path);
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        h
    }

    fn add_file(b: &mut tar::Builder<impl Write>, path: &[u8], data: &[u8]) {
        let h = header(path, tar::EntryType::Regular, data.len() as u64);
        b.append(&h, data).unwrap();
    }

    fn add_symlink(b: &mut tar::Builder<impl Write>, path: &[u8], target: &str) {
        let mut h = header(path, tar::EntryType::Symlink, 0);
        h.set_link_name(target).unwrap();
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
    }

    fn xz_tar(path: &Path, build: impl FnOnce(&mut tar::Builder<xz2::write::XzEncoder<File>>)) {
        let enc = xz2::write::XzEncoder::new(File::create(path).unwrap(), 1);
        let mut b = tar::Builder::new(enc);
        build(&mut b);
        b.into_inner().unwrap().finish().unwrap();
    }

    fn ctx_create(dir: &Path, meta: &Path, fstree: &Path) -> Result<TemplateOutput> {
        let rootfs = dir.join("c1/rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        let args = vec![
            "--fstree".to_string(),
            fstree.display().to_string(),
            format!("--metadata={}", meta.display()),
        ];
        let ctx = TemplateContext {
            name: "c1",
            rootfs: &rootfs,
            args: &args,
        };
        create(&ctx)
    }

    fn write_meta(path: &Path) {
        xz_tar(path, |b| {
            add_file(
                b,
                b"./config",
                b"lxc.include = LXC_TEMPLATE_CONFIG/debian.common.conf\nlxc.include = LXC_TEMPLATE_CONFIG/other.conf\nlxc.arch = x86_64\n",
            );
            add_file(b, b"./templates", b"/etc/hostname\n/etc/missing\n");
            add_file(b, b"./create-message", b"hello\n");
        });
    }

    #[test]
    fn unpacks_files_links_and_renders_templates() {
        let t = tempfile::tempdir().unwrap();
        let meta = t.path().join("meta.tar.xz");
        let fstree = t.path().join("rootfs.tar.xz");
        write_meta(&meta);
        xz_tar(&fstree, |b| {
            b.append(&header(b"./", tar::EntryType::Directory, 0), io::empty())
                .unwrap();
            b.append(
                &header(b"./etc/", tar::EntryType::Directory, 0),
                io::empty(),
            )
            .unwrap();
            add_file(b, b"./etc/hostname", b"LXC_NAME\n");
            add_file(b, b"./bin/sh", b"#!fake\n");
            add_symlink(b, b"./bin/ash", "sh");
            let mut h = header(b"./bin/sh2", tar::EntryType::Link, 0);
            h.set_link_name("bin/sh").unwrap();
            h.set_cksum();
            b.append(&h, io::empty()).unwrap();
        });
        let out = ctx_create(t.path(), &meta, &fstree).unwrap();
        let rootfs = t.path().join("c1/rootfs");
        assert_eq!(
            std::fs::read_to_string(rootfs.join("etc/hostname")).unwrap(),
            "c1\n"
        );
        assert_eq!(
            std::fs::read_link(rootfs.join("bin/ash")).unwrap(),
            Path::new("sh")
        );
        let a = std::fs::metadata(rootfs.join("bin/sh")).unwrap();
        let b = std::fs::metadata(rootfs.join("bin/sh2")).unwrap();
        assert_eq!(a.ino(), b.ino());
        assert_eq!(a.mode() & 0o7777, 0o644);
        assert_eq!(a.mtime(), 1_700_000_000);
        let common = format!(
            "lxc.include = {}/common.conf",
            warren_lxc_config::WARREN_CONFIG_DIR
        );
        assert_eq!(out.config_lines[0], common);
        assert!(out.config_lines[1].starts_with("# dropped"));
        assert_eq!(out.config_lines[2], "lxc.arch = x86_64");
    }

    fn expect_refused(
        entries: impl FnOnce(&mut tar::Builder<xz2::write::XzEncoder<File>>),
        outside: &Path,
    ) {
        let t = tempfile::tempdir().unwrap();
        let meta = t.path().join("meta.tar.xz");
        let fstree = t.path().join("rootfs.tar.xz");
        write_meta(&meta);
        xz_tar(&fstree, entries);
        let err = ctx_create(t.path(), &meta, &fstree)
            .err()
            .expect("the archive must be refused");
        let _ = format!("{err:#}");
        assert!(!outside.exists(), "{} was written", outside.display());
    }

    #[test]
    fn refuses_parent_dir_entries() {
        let t = tempfile::tempdir().unwrap();
        // ../escape from <t>/c1/rootfs would land in <t>/c1/escape
        let name = format!(
            "../../../{}/escape",
            t.path().file_name().unwrap().to_string_lossy()
        );
        let outside = t.path().join("escape");
        expect_refused(|b| add_file(b, name.as_bytes(), b"x"), &outside);
        expect_refused(
            |b| add_file(b, b"../escape", b"x"),
            &t.path().join("c1/escape"),
        );
    }

    #[test]
    fn refuses_absolute_entries() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("abs-escape");
        let name = outside.display().to_string();
        expect_refused(|b| add_file(b, name.as_bytes(), b"x"), &outside);
    }

    #[test]
    fn never_writes_through_a_symlink() {
        // link -> <tmp>/hostetc (standing in for /etc), then link/passwd: must not land there
        let host = tempfile::tempdir().unwrap();
        let host_etc = host.path().join("hostetc");
        std::fs::create_dir(&host_etc).unwrap();
        let target = host_etc.display().to_string();
        expect_refused(
            |b| {
                add_symlink(b, b"./link", &target);
                add_file(b, b"./link/passwd", b"root::0:0::/:/bin/sh\n");
            },
            &host_etc.join("passwd"),
        );
        // and the same with the real /etc: nothing written, an error instead
        let before = std::fs::metadata("/etc/passwd").map(|m| m.mtime()).ok();
        expect_refused(
            |b| {
                add_symlink(b, b"./link", "/etc");
                add_file(b, b"./link/warren-local-test", b"x");
            },
            Path::new("/etc/warren-local-test"),
        );
        assert_eq!(
            before,
            std::fs::metadata("/etc/passwd").map(|m| m.mtime()).ok()
        );
    }

    #[test]
    fn refuses_hard_links_out_of_the_rootfs() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("c1/rootfs/evil");
        expect_refused(
            |b| {
                let mut h = header(b"./evil", tar::EntryType::Link, 0);
                h.as_old_mut().linkname[..13].copy_from_slice(b"../etc/passwd");
                h.set_cksum();
                b.append(&h, io::empty()).unwrap();
            },
            &outside,
        );
    }

    #[test]
    fn gzip_and_plain_tar_by_magic() {
        for gz in [true, false] {
            let t = tempfile::tempdir().unwrap();
            let meta = t.path().join("meta.tar.xz");
            write_meta(&meta);
            let fstree = t.path().join("rootfs.tar.xz"); // the name lies; the magic decides
            let f = File::create(&fstree).unwrap();
            let w: Box<dyn Write> = if gz {
                Box::new(flate2::write::GzEncoder::new(
                    f,
                    flate2::Compression::fast(),
                ))
            } else {
                Box::new(f)
            };
            let mut b = tar::Builder::new(w);
            add_file(&mut b, b"hello", b"hi");
            let mut w = b.into_inner().unwrap();
            w.flush().unwrap();
            drop(w); // a GzEncoder writes its trailer when dropped
            ctx_create(t.path(), &meta, &fstree).unwrap();
            assert_eq!(
                std::fs::read(t.path().join("c1/rootfs/hello")).unwrap(),
                b"hi"
            );
        }
    }

    #[test]
    fn args_in_either_order() {
        let a = parse_args(&[
            "--metadata".into(),
            "m".into(),
            "--fstree".into(),
            "f".into(),
        ])
        .unwrap();
        let b = parse_args(&["--fstree=f".into(), "--metadata=m".into()]).unwrap();
        assert_eq!((a.metadata, a.fstree), (b.metadata, b.fstree));
        assert!(parse_args(&["--fstree=f".into()]).is_err());
        assert!(parse_args(&["--bogus".into()]).is_err());
    }
}
