//! `lxc-copy`: a full copy (or `-R` rename) of a stopped dir-backed container, plus the pieces
//! `lxc-snapshot` shares: the ownership-, mode-, xattr- and device-preserving tree copy
//! ([`copy_tree`]) and the container clone with its config re-pointed ([`clone_into`]).

use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;

use crate::common::{check_name, Common, Container};
use warren_lxc_config::Config;
use warren_runtime::proto::{self, Request, State};
use warren_runtime::spec::HookKind;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Name of the new container (the new name with -R)
    #[arg(short = 'N', long = "newname", value_name = "NEWNAME")]
    pub newname: Option<String>,
    /// Container path of the new container (default: the original's lxcpath)
    #[arg(short = 'p', long = "newpath", value_name = "NEWPATH")]
    pub newpath: Option<PathBuf>,
    /// Rename the container instead of copying it
    #[arg(short = 'R', long = "rename")]
    pub rename: bool,
    /// Copy-on-write snapshot copy (not supported: warren only has dir storage; omit -s for a full copy)
    #[arg(short = 's', long = "snapshot")]
    pub snapshot: bool,
    /// Storage type of the copy (only "dir" is supported)
    #[arg(short = 'B', long = "backingstorage", value_name = "TYPE")]
    pub backingstorage: Option<String>,
    /// Keep the original's lxc.uts.name instead of setting it to NEWNAME
    #[arg(short = 'K', long = "keepname")]
    pub keepname: bool,
    /// Keep the original's MAC addresses instead of generating new ones
    #[arg(short = 'M', long = "keepmac")]
    pub keepmac: bool,
    /// Ephemeral copy (not supported yet)
    #[arg(short = 'e', long = "ephemeral")]
    pub ephemeral: bool,
}

pub fn run(args: Args) -> Result<i32> {
    if args.snapshot {
        bail!("copy-on-write snapshot copies (-s) are not supported (only dir storage); omit -s for a full copy");
    }
    if args.ephemeral {
        bail!("ephemeral copies (-e) are not supported yet");
    }
    if let Some(b) = args.backingstorage.as_deref().filter(|b| *b != "dir") {
        bail!("backing storage \"{b}\" is not supported; only \"dir\" is");
    }
    let src = Container::locate(&args.common, None, true)?;
    let newname = args
        .newname
        .clone()
        .ok_or_else(|| anyhow!("a name for the new container is needed (-N NEWNAME)"))?;
    check_name(&newname)?;
    let newpath = args.newpath.clone().unwrap_or_else(|| src.lxcpath.clone());
    let dst_dir = newpath.join(&newname);
    if same_place(&dst_dir, &src.dir()) {
        bail!("{} and {} are the same container", src.name, newname);
    }
    if fs::symlink_metadata(&dst_dir).is_ok() {
        bail!("{newname} already exists ({})", dst_dir.display());
    }
    let why = if args.rename {
        "only a stopped container can be renamed"
    } else {
        "only a stopped container can be copied (copies of running containers need copy-on-write storage)"
    };
    ensure_stopped(&src, why)?;
    let cfg = src.load_config()?;
    let src_rootfs = rootfs_of(&cfg, &src.dir())?;
    if !src_rootfs.is_dir() {
        bail!(
            "the rootfs of {} is missing: {} is not a directory",
            src.name,
            src_rootfs.display()
        );
    }
    if args.rename {
        return rename(&src, &src_rootfs, &newname, &dst_dir, args.keepname);
    }
    clone_into(&CloneJob {
        src_config: &src.config_path,
        src_dir: &src.dir(),
        src_rootfs: &src_rootfs,
        skip: &[],
        dst_dir: &dst_dir,
        final_dir: &dst_dir,
        uts_name: (!args.keepname).then_some(newname.as_str()),
        new_macs: !args.keepmac,
    })?;
    if let Err(e) = run_clone_hooks(&src.name, &newname, &newpath, args.common.quiet) {
        // a clone hook that fails fails the copy, and a failed copy leaves nothing behind
        let _ = fs::remove_dir_all(&dst_dir);
        return Err(e);
    }
    Ok(0)
}

/// Refuse a container that is not STOPPED: copying a live rootfs gives an inconsistent copy, and
/// LXC only does it through copy-on-write snapshots, which dir storage doesn't have. `why` ends
/// the message ("only a stopped container can be copied").
pub fn ensure_stopped(c: &Container, why: &str) -> Result<()> {
    // a monitor socket that answers means the container is not STOPPED, whatever state it reports
    let state = match proto::call(&c.lxcpath, &c.name, &Request::Info) {
        Ok(Some((resp, _))) => resp.state.unwrap_or(State::Running),
        Ok(None) => State::Stopped,
        Err(e) => {
            return Err(e).with_context(|| format!("ask the monitor of {} for its state", c.name))
        }
    };
    if state != State::Stopped {
        bail!(
            "{} is {}: {why}; stop it first (lxc-stop -n {})",
            c.name,
            state.as_str(),
            c.name
        );
    }
    Ok(())
}

/// The rootfs directory a config names (`lxc.rootfs.path`, `dir:` or a bare path), or
/// `<container dir>/rootfs` when unset. Other storage types are refused.
pub fn rootfs_of(cfg: &Config, container_dir: &Path) -> Result<PathBuf> {
    let Some(raw) = cfg
        .get_all("lxc.rootfs.path")
        .last()
        .map(|e| e.value.clone())
    else {
        return Ok(container_dir.join("rootfs"));
    };
    let (ty, path) = warren_lxc_config::value::parse_rootfs_path(&raw)
        .map_err(|why| anyhow!("lxc.rootfs.path = {raw}: {why}"))?;
    if ty != "dir" {
        bail!("lxc.rootfs.path = {raw}: storage type \"{ty}\" is not supported; only dir rootfs can be copied");
    }
    Ok(PathBuf::from(path))
}

fn same_place(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canon(a) == canon(b)
}

/// `lxc.hook.clone` of the new container, with LXC's environment plus LXC_SRC_NAME.
fn run_clone_hooks(src_name: &str, newname: &str, newpath: &Path, quiet: bool) -> Result<()> {
    let dst = Container {
        name: newname.to_string(),
        lxcpath: newpath.to_path_buf(),
        config_path: newpath.join(newname).join("config"),
    };
    let spec = dst
        .spec(quiet)
        .with_context(|| format!("read the new config {}", dst.config_path.display()))?;
    if !spec.hooks.iter().any(|h| h.kind == HookKind::Clone) {
        return Ok(());
    }
    let mut env = warren_runtime::hooks::hook_env(&spec, None);
    env.push(("LXC_SRC_NAME".to_string(), src_name.to_string()));
    warren_runtime::hooks::run_all(&spec, HookKind::Clone, &env).map_err(|e| anyhow!("{e}"))
}

/// `-R`: move the container directory and re-point its config. A rename across filesystems
/// (`-p` elsewhere) falls back to a full copy and then removes the original.
fn rename(
    src: &Container,
    src_rootfs: &Path,
    newname: &str,
    dst_dir: &Path,
    keepname: bool,
) -> Result<i32> {
    let snaps = src.dir().join("snaps");
    if fs::read_dir(&snaps)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
    {
        bail!(
            "{} has snapshots; renaming a container with snapshots is not supported (destroy them with lxc-snapshot -d ALL)",
            src.name
        );
    }
    let text = fs::read_to_string(&src.config_path)
        .with_context(|| format!("read {}", src.config_path.display()))?;
    if let Some(parent) = dst_dir.parent() {
        fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    let uts_name = (!keepname).then_some(newname);
    match fs::rename(src.dir(), dst_dir) {
        Ok(()) => {
            // a rootfs outside the container dir stays where it is; one inside moved with it
            let new_rootfs = match src_rootfs.strip_prefix(src.dir()) {
                Ok(rel) => dst_dir.join(rel),
                Err(_) => src_rootfs.to_path_buf(),
            };
            let rules = Rewrite {
                old_dir: &src.dir(),
                new_dir: dst_dir,
                old_rootfs: src_rootfs,
                new_rootfs: &new_rootfs,
                uts_name,
                new_macs: false,
            };
            let written = rewrite_config_text(&text, &rules)
                .and_then(|t| write_config(&dst_dir.join("config"), &t, &src.config_path));
            if let Err(e) = written {
                // put it back as it was rather than leave a container with a stale config
                let _ = fs::rename(dst_dir, src.dir());
                return Err(e);
            }
            Ok(0)
        }
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            clone_into(&CloneJob {
                src_config: &src.config_path,
                src_dir: &src.dir(),
                src_rootfs,
                skip: &[],
                dst_dir,
                final_dir: dst_dir,
                uts_name,
                new_macs: false,
            })?;
            fs::remove_dir_all(src.dir()).with_context(|| {
                format!(
                    "{newname} was copied, but removing the original {} failed",
                    src.dir().display()
                )
            })?;
            Ok(0)
        }
        Err(e) => Err(e)
            .with_context(|| format!("rename {} to {}", src.dir().display(), dst_dir.display())),
    }
}

/// One container clone: what to copy from where, and how the copy's config must read.
pub struct CloneJob<'a> {
    /// The config to copy (rewritten on the way).
    pub src_config: &'a Path,
    /// The source container's directory: other files in it are copied too, and config values
    /// naming paths inside it are re-pointed to `final_dir`.
    pub src_dir: &'a Path,
    pub src_rootfs: &'a Path,
    /// Names in `src_dir` not to copy (besides `config`, `rootfs` and `snaps`, never copied).
    pub skip: &'a [&'a str],
    /// Where the copy is written; must not exist.
    pub dst_dir: &'a Path,
    /// The directory the copy's config should name: `dst_dir`, except when the copy is staged
    /// somewhere and moved into place afterwards (an in-place snapshot restore).
    pub final_dir: &'a Path,
    /// Set lxc.uts.name to this.
    pub uts_name: Option<&'a str>,
    /// Give every interface with a fixed lxc.net.N.hwaddr a new random one.
    pub new_macs: bool,
}

/// Copies a container: `dst_dir/rootfs` from the rootfs, the other files of its directory, and
/// its config re-pointed at `final_dir`. On failure `dst_dir` is removed again.
pub fn clone_into(job: &CloneJob<'_>) -> Result<()> {
    if let Some(parent) = job.dst_dir.parent() {
        fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    fs::create_dir(job.dst_dir).with_context(|| format!("create {}", job.dst_dir.display()))?;
    let res = clone_contents(job);
    if res.is_err() {
        let _ = fs::remove_dir_all(job.dst_dir);
    }
    res
}

fn clone_contents(job: &CloneJob<'_>) -> Result<()> {
    let text = fs::read_to_string(job.src_config)
        .with_context(|| format!("read {}", job.src_config.display()))?;
    // the new container's directory gets the owner and mode of the original's
    if let Ok(md) = fs::symlink_metadata(job.src_dir) {
        apply_meta(job.src_dir, job.dst_dir, &md, &mut CopyState::default())?;
    }
    let mut state = CopyState::default();
    // lxc.rootfs.path may name a symlink to the real directory: that one link is followed
    let rootfs = fs::canonicalize(job.src_rootfs)
        .with_context(|| format!("read {}", job.src_rootfs.display()))?;
    copy_entry(&rootfs, &job.dst_dir.join("rootfs"), &mut state)?;
    if job.src_dir.is_dir() {
        let entries =
            fs::read_dir(job.src_dir).with_context(|| format!("read {}", job.src_dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("read {}", job.src_dir.display()))?;
            let name = entry.file_name();
            let name_str = name.to_string_lossy();
            if ["config", "rootfs", "snaps"].contains(&name_str.as_ref())
                || job.skip.contains(&name_str.as_ref())
                || entry.path() == job.src_rootfs
                || name_str.ends_with(".tmp")
                || name_str.starts_with(".warren-")
            {
                continue;
            }
            copy_entry(&entry.path(), &job.dst_dir.join(&name), &mut state)?;
        }
    }
    let rules = Rewrite {
        old_dir: job.src_dir,
        new_dir: job.final_dir,
        old_rootfs: job.src_rootfs,
        new_rootfs: &job.final_dir.join("rootfs"),
        uts_name: job.uts_name,
        new_macs: job.new_macs,
    };
    let new_text = rewrite_config_text(&text, &rules)?;
    write_config(&job.dst_dir.join("config"), &new_text, job.src_config)?;
    state.report();
    Ok(())
}

/// Writes a config with the mode of the one it came from (configs may hold secrets).
fn write_config(path: &Path, text: &str, like: &Path) -> Result<()> {
    fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    if let Ok(md) = fs::metadata(like) {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(md.mode() & 0o7777));
    }
    Ok(())
}

/// How a copied config must change.
pub struct Rewrite<'a> {
    pub old_dir: &'a Path,
    pub new_dir: &'a Path,
    pub old_rootfs: &'a Path,
    pub new_rootfs: &'a Path,
    pub uts_name: Option<&'a str>,
    pub new_macs: bool,
}

/// The config text for the copy: lxc.rootfs.path set to `dir:<new rootfs>` (added when absent,
/// because the default would name the old place), lxc.uts.name set when asked, fixed MAC
/// addresses replaced when asked, and every other value naming a path under the old rootfs or the
/// old container directory (lxc.mount.fstab, lxc.mount.entry, log files, includes) re-pointed.
/// Comments and unknown lines are kept as written.
pub fn rewrite_config_text(text: &str, r: &Rewrite<'_>) -> Result<String> {
    let old_dir = r.old_dir.to_string_lossy();
    let new_dir = r.new_dir.to_string_lossy();
    let old_rootfs = r.old_rootfs.to_string_lossy();
    let new_rootfs = r.new_rootfs.to_string_lossy();
    let mut out = String::with_capacity(text.len() + 128);
    let (mut saw_rootfs, mut saw_uts) = (false, false);
    for raw in text.lines() {
        let body = raw.trim_start();
        let setting = if body.starts_with("lxc.") {
            split_setting(body)
        } else {
            None
        };
        let Some((key, value)) = setting else {
            out.push_str(raw);
            out.push('\n');
            continue;
        };
        let new_value = if key == "lxc.rootfs.path" {
            saw_rootfs = true;
            format!("dir:{new_rootfs}")
        } else if key == "lxc.uts.name" && r.uts_name.is_some() {
            saw_uts = true;
            r.uts_name.unwrap_or_default().to_string()
        } else if r.new_macs && is_hwaddr_key(key) && !value.contains(['x', 'X']) {
            // 'x' placeholders are randomized at every start anyway
            random_mac()?
        } else {
            let v = repoint(value, &old_rootfs, &new_rootfs);
            repoint(&v, &old_dir, &new_dir)
        };
        if new_value == value {
            out.push_str(raw);
        } else {
            out.push_str(&warren_lxc_config::format_setting(key, &new_value));
        }
        out.push('\n');
    }
    if !saw_rootfs {
        out.push_str(&warren_lxc_config::format_setting(
            "lxc.rootfs.path",
            &format!("dir:{new_rootfs}"),
        ));
        out.push('\n');
    }
    if let (false, Some(n)) = (saw_uts, r.uts_name) {
        out.push_str(&warren_lxc_config::format_setting("lxc.uts.name", n));
        out.push('\n');
    }
    Ok(out)
}

/// `key = value` as LXC reads it: blanks around both trimmed, one pair of matching quotes removed.
fn split_setting(body: &str) -> Option<(&str, &str)> {
    let (k, v) = body.split_once('=')?;
    let key = k.trim();
    let v = v.trim();
    let b = v.as_bytes();
    let value = if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &v[1..v.len() - 1]
    } else {
        v
    };
    (!key.is_empty()).then_some((key, value))
}

fn is_hwaddr_key(key: &str) -> bool {
    key.strip_prefix("lxc.net.")
        .and_then(|r| r.split_once('.'))
        .is_some_and(|(idx, sub)| sub == "hwaddr" && idx.bytes().all(|b| b.is_ascii_digit()))
}

/// A random locally administered-looking address in the Xen OUI LXC uses (00:16:3e).
fn random_mac() -> Result<String> {
    let mut b = [0u8; 3];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("read /dev/urandom for a new MAC address")?;
    Ok(format!("00:16:3e:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]))
}

/// Replaces `old` by `new` in `value` wherever `old` appears as a whole path (followed by the end,
/// `/`, a blank, `:`, `,` or a quote), so /var/lib/lxc/c1 is not matched inside /var/lib/lxc/c10.
pub fn repoint(value: &str, old: &str, new: &str) -> String {
    if old.is_empty() || old == new {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find(old) {
        let after = &rest[pos + old.len()..];
        let boundary = after.is_empty() || after.starts_with(['/', ' ', '\t', ':', ',', '\'', '"']);
        let before_ok = pos == 0 || rest[..pos].ends_with([' ', '\t', '=', ':', ',', '\'', '"']);
        out.push_str(&rest[..pos]);
        out.push_str(if boundary && before_ok { new } else { old });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Bookkeeping of one tree copy: hard links seen (so they stay links) and xattrs that could not be
/// copied (reported once at the end, since a filesystem without e.g. security.selinux support
/// would otherwise print one line per file).
#[derive(Default)]
pub struct CopyState {
    links: HashMap<(u64, u64), PathBuf>,
    xattr_failures: usize,
    first_xattr_failure: Option<String>,
}

impl CopyState {
    fn xattr_failed(&mut self, what: String) {
        self.xattr_failures += 1;
        if self.first_xattr_failure.is_none() {
            self.first_xattr_failure = Some(what);
        }
    }

    fn report(&self) {
        if let Some(first) = &self.first_xattr_failure {
            eprintln!(
                "warning: {} extended attribute(s) could not be copied (first: {first})",
                self.xattr_failures
            );
        }
    }
}

/// Copies `src` to `dst` (which must not exist) recursively without following any symlink:
/// symlinks are recreated, device nodes, FIFOs and sockets re-made with mknod, hard links within
/// the tree kept as links, and owner, mode (setuid bits included), xattrs (file capabilities,
/// ACLs) and timestamps preserved.
#[allow(dead_code)] // for callers copying a plain tree (tests; future export/import)
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let mut state = CopyState::default();
    copy_entry(src, dst, &mut state)?;
    state.report();
    Ok(())
}

fn copy_entry(src: &Path, dst: &Path, state: &mut CopyState) -> Result<()> {
    let md = fs::symlink_metadata(src).with_context(|| format!("read {}", src.display()))?;
    let ft = md.file_type();
    if ft.is_dir() {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dst)
            .with_context(|| format!("create directory {}", dst.display()))?;
        let mut entries = Vec::new();
        for e in fs::read_dir(src).with_context(|| format!("read directory {}", src.display()))? {
            entries.push(
                e.with_context(|| format!("read directory {}", src.display()))?
                    .file_name(),
            );
        }
        for name in entries {
            copy_entry(&src.join(&name), &dst.join(&name), state)?;
        }
        // owner and mode after the contents, so a read-only directory can still be filled
        return apply_meta(src, dst, &md, state);
    }
    if ft.is_symlink() {
        let target =
            fs::read_link(src).with_context(|| format!("read symlink {}", src.display()))?;
        std::os::unix::fs::symlink(&target, dst)
            .with_context(|| format!("create symlink {}", dst.display()))?;
        return apply_meta(src, dst, &md, state);
    }
    let key = (md.dev(), md.ino());
    if md.nlink() > 1 {
        if let Some(first) = state.links.get(&key) {
            fs::hard_link(first, dst)
                .with_context(|| format!("link {} to {}", dst.display(), first.display()))?;
            return Ok(());
        }
    }
    if ft.is_file() {
        copy_file_data(src, dst)?;
    } else {
        let kind = if ft_is(&md, libc::S_IFCHR) {
            SFlag::S_IFCHR
        } else if ft_is(&md, libc::S_IFBLK) {
            SFlag::S_IFBLK
        } else if ft_is(&md, libc::S_IFIFO) {
            SFlag::S_IFIFO
        } else if ft_is(&md, libc::S_IFSOCK) {
            SFlag::S_IFSOCK
        } else {
            bail!(
                "{}: unknown file type (mode {:o})",
                src.display(),
                md.mode()
            );
        };
        nix::sys::stat::mknod(dst, kind, Mode::from_bits_truncate(0o600), md.rdev())
            .with_context(|| format!("create device node {}", dst.display()))?;
    }
    apply_meta(src, dst, &md, state)?;
    if md.nlink() > 1 {
        state.links.insert(key, dst.to_path_buf());
    }
    Ok(())
}

fn ft_is(md: &fs::Metadata, kind: libc::mode_t) -> bool {
    md.mode() & libc::S_IFMT == kind
}

/// The data of one regular file; neither end follows a symlink (O_NOFOLLOW), and the copy is
/// created private (0600) until its real owner and mode are set.
fn copy_file_data(src: &Path, dst: &Path) -> Result<()> {
    let mut from = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(src)
        .with_context(|| format!("open {}", src.display()))?;
    let mut to = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dst)
        .with_context(|| format!("create {}", dst.display()))?;
    io::copy(&mut from, &mut to)
        .with_context(|| format!("copy {} to {}", src.display(), dst.display()))?;
    Ok(())
}

/// Owner, then mode (chown clears setuid bits), then xattrs (chown clears security.capability),
/// then timestamps (everything before touches ctime/mtime). None of it follows a symlink.
pub fn apply_meta(src: &Path, dst: &Path, md: &fs::Metadata, state: &mut CopyState) -> Result<()> {
    std::os::unix::fs::lchown(dst, Some(md.uid()), Some(md.gid()))
        .with_context(|| format!("set the owner of {}", dst.display()))?;
    let is_link = md.file_type().is_symlink();
    if !is_link {
        fs::set_permissions(dst, fs::Permissions::from_mode(md.mode() & 0o7777))
            .with_context(|| format!("set the mode of {}", dst.display()))?;
    }
    copy_xattrs(src, dst, state);
    let atime = TimeSpec::new(md.atime(), md.atime_nsec());
    let mtime = TimeSpec::new(md.mtime(), md.mtime_nsec());
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        dst,
        &atime,
        &mtime,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .with_context(|| format!("set the times of {}", dst.display()))?;
    Ok(())
}

/// Copies the extended attributes of `src` to `dst` (neither followed if a symlink). Filesystems
/// without xattrs, or attributes the destination refuses, are counted, not fatal: the copy is
/// still a working container.
fn copy_xattrs(src: &Path, dst: &Path, state: &mut CopyState) {
    let names = match xattr::list(src) {
        Ok(n) => n,
        Err(e) if is_unsupported(&e) => return,
        Err(e) => return state.xattr_failed(format!("{}: {e}", src.display())),
    };
    for name in names {
        let value = match xattr::get(src, &name) {
            Ok(Some(v)) => v,
            Ok(None) => continue,
            Err(e) => {
                state.xattr_failed(format!("{} {}: {e}", src.display(), name.to_string_lossy()));
                continue;
            }
        };
        if let Err(e) = xattr::set(dst, &name, &value) {
            state.xattr_failed(format!("{} {}: {e}", dst.display(), name.to_string_lossy()));
        }
    }
}

fn is_unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTSUP) || e.kind() == io::ErrorKind::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repoint_only_whole_paths() {
        let (o, n) = ("/l/c1", "/l/c2");
        assert_eq!(repoint("/l/c1/fstab", o, n), "/l/c2/fstab");
        assert_eq!(repoint("/l/c10/fstab", o, n), "/l/c10/fstab");
        assert_eq!(repoint("/x/l/c1/y", o, n), "/x/l/c1/y");
        assert_eq!(
            repoint("/l/c1/d mnt none bind 0 0", o, n),
            "/l/c2/d mnt none bind 0 0"
        );
        assert_eq!(repoint("sh -c '/l/c1/hook'", o, n), "sh -c '/l/c2/hook'");
        assert_eq!(repoint("a,upperdir=/l/c1", o, n), "a,upperdir=/l/c2");
    }

    #[test]
    fn config_rewrite() {
        let text = "# keep me\nlxc.uts.name = c1\nlxc.rootfs.path = dir:/l/c1/rootfs\nlxc.mount.fstab = /l/c1/fstab\n\
                    lxc.net.0.hwaddr = 00:16:3e:00:00:01\nlxc.net.1.hwaddr = 00:16:3e:xx:xx:xx\nlxc.console.logfile = /var/log/c1\n";
        let r = Rewrite {
            old_dir: Path::new("/l/c1"),
            new_dir: Path::new("/m/c2"),
            old_rootfs: Path::new("/l/c1/rootfs"),
            new_rootfs: Path::new("/m/c2/rootfs"),
            uts_name: Some("c2"),
            new_macs: true,
        };
        let out = rewrite_config_text(text, &r).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "# keep me");
        assert_eq!(lines[1], "lxc.uts.name = c2");
        assert_eq!(lines[2], "lxc.rootfs.path = dir:/m/c2/rootfs");
        assert_eq!(lines[3], "lxc.mount.fstab = /m/c2/fstab");
        assert!(lines[4].starts_with("lxc.net.0.hwaddr = 00:16:3e:"));
        assert_ne!(lines[4], "lxc.net.0.hwaddr = 00:16:3e:00:00:01");
        assert_eq!(lines[5], "lxc.net.1.hwaddr = 00:16:3e:xx:xx:xx");
        assert_eq!(lines[6], "lxc.console.logfile = /var/log/c1");
        // no rootfs.path or uts.name: both added, the defaults would name the old container
        let out = rewrite_config_text("lxc.arch = x86_64\n", &r).unwrap();
        assert!(out.contains("lxc.rootfs.path = dir:/m/c2/rootfs\n"));
        assert!(out.contains("lxc.uts.name = c2\n"));
    }

    #[test]
    fn copy_tree_keeps_links_modes_and_hardlinks() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir_all(src.join("d")).unwrap();
        fs::write(src.join("d/f"), b"data").unwrap();
        fs::set_permissions(src.join("d/f"), fs::Permissions::from_mode(0o4751)).unwrap();
        fs::hard_link(src.join("d/f"), src.join("h")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("l")).unwrap();
        fs::set_permissions(src.join("d"), fs::Permissions::from_mode(0o555)).unwrap();
        let dst = t.path().join("dst");
        copy_tree(&src, &dst).unwrap();
        let f = fs::symlink_metadata(dst.join("d/f")).unwrap();
        assert_eq!(f.mode() & 0o7777, 0o4751);
        assert_eq!(f.ino(), fs::symlink_metadata(dst.join("h")).unwrap().ino());
        assert_eq!(
            fs::read_link(dst.join("l")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            fs::symlink_metadata(dst.join("d")).unwrap().mode() & 0o777,
            0o555
        );
        assert_eq!(
            fs::symlink_metadata(dst.join("d/f")).unwrap().mtime(),
            fs::symlink_metadata(src.join("d/f")).unwrap().mtime()
        );
        // the destination must not exist: nothing is merged into an existing tree
        assert!(copy_tree(&src, &dst).is_err());
    }
}
