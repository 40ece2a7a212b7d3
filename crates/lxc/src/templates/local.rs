//! The `local` template: a container from an LXC image pair on disk (`--metadata META.tar.xz
//! --fstree ROOTFS.tar.xz`, xz, gzip or plain tar). The fstree is unpacked into the rootfs through
//! directory descriptors opened with O_NOFOLLOW, so no entry can write outside the rootfs (absolute
//! paths and `..` are refused, symlinks already in the rootfs are never followed); owners, modes,
//! symlinks, hard links, device nodes, xattrs and times are kept. The metadata's `config` becomes
//! the container's config lines, its `templates` get LXC_NAME replaced, its `create-message` shown.

use anyhow::{anyhow, bail, Context, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use super::{TemplateContext, TemplateOutput};
use warren_image::unpack::{dir_flags, open_archive, open_dir, rel_components, unpack_fstree};

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
    unpack_fstree(&opts.fstree, ctx.rootfs, opts.no_dev || ctx.unprivileged)?;
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

/// LXC_NAME replaced by the container's name in the files the image lists (/etc/hostname,
/// /etc/hosts, ...). Listed files that are missing, or are symlinks, are skipped: a symlink could
/// point anywhere on the host.
pub(crate) fn render_templates(rootfs: &Path, list: &str, name: &str) -> Result<()> {
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
    use std::io;
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
            unprivileged: false,
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
