//! Reproducible tarballs of a directory tree: entries sorted by name, numeric owners without
//! names, modification times clamped to SOURCE_DATE_EPOCH, hard links kept, xattrs as PAX
//! `SCHILY.xattr.*` records (what `tar --xattrs --sort=name` writes, minus the build host's traces).

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct TarError {
    pub path: PathBuf,
    pub source: io::Error,
}

#[derive(Debug, Clone, Default)]
pub struct TarOptions {
    /// What the tree's root is called in the archive: "." (entries `./etc/...`) or e.g. "rootfs".
    pub root_name: String,
    /// Times later than this become this (SOURCE_DATE_EPOCH).
    pub clamp_mtime: Option<i64>,
    /// Files whose content is replaced in the archive (tree-relative path → content; owner,
    /// mode and time stay the file's).
    pub replace: std::collections::BTreeMap<String, Vec<u8>>,
    /// Tree-relative paths left out.
    pub omit: std::collections::BTreeSet<String>,
    /// Files only the archive has (root-owned, 0644), appended after the tree.
    pub add: std::collections::BTreeMap<String, Vec<u8>>,
}

/// Counts of what went into an archive.
#[derive(Debug, Clone, Copy, Default)]
pub struct TarStats {
    pub entries: u64,
    pub bytes: u64,
}

fn err(path: &Path, source: io::Error) -> TarError {
    TarError {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `root` as a tar stream into `out`, and returns `out` (not finished: the caller may add
/// more entries with [`append_file`] and must call `finish_tar`).
pub fn write_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    opts: &TarOptions,
) -> Result<TarStats, TarError> {
    let mut state = Walk {
        links: HashMap::new(),
        stats: TarStats::default(),
        opts,
    };
    let name = if opts.root_name.is_empty() {
        "."
    } else {
        opts.root_name.as_str()
    };
    state.entry(builder, root, name.as_bytes())?;
    state.dir(builder, root, name.as_bytes())?;
    for (rel, data) in &opts.add {
        let entry = format!("{name}/{rel}");
        append_file(builder, &entry, data, 0o644, opts.clamp_mtime.unwrap_or(0))
            .map_err(|e| err(root, e))?;
        state.stats.entries += 1;
    }
    Ok(state.stats)
}

struct Walk<'a> {
    links: HashMap<(u64, u64), Vec<u8>>,
    stats: TarStats,
    opts: &'a TarOptions,
}

impl Walk<'_> {
    fn dir<W: Write>(
        &mut self,
        b: &mut tar::Builder<W>,
        dir: &Path,
        name: &[u8],
    ) -> Result<(), TarError> {
        let mut children: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
            .map_err(|e| err(dir, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| err(dir, e))?;
        children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for child in children {
            let path = dir.join(&child);
            let mut child_name = name.to_vec();
            child_name.push(b'/');
            child_name.extend_from_slice(child.as_bytes());
            let is_dir = self.entry(b, &path, &child_name)?;
            if is_dir {
                self.dir(b, &path, &child_name)?;
            }
        }
        Ok(())
    }

    /// Appends one entry; says whether it was a directory (to descend into).
    fn entry<W: Write>(
        &mut self,
        b: &mut tar::Builder<W>,
        path: &Path,
        name: &[u8],
    ) -> Result<bool, TarError> {
        let root_len = if self.opts.root_name.is_empty() {
            1
        } else {
            self.opts.root_name.len()
        };
        let rel =
            String::from_utf8_lossy(name.get(root_len + 1..).unwrap_or_default()).into_owned();
        if self.opts.omit.contains(&rel) {
            return Ok(false);
        }
        let md = std::fs::symlink_metadata(path).map_err(|e| err(path, e))?;
        let ft = md.file_type();
        if ft.is_socket() {
            return Ok(false);
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(md.mode() & 0o7777);
        h.set_uid(u64::from(md.uid()));
        h.set_gid(u64::from(md.gid()));
        let mtime = match self.opts.clamp_mtime {
            Some(c) if md.mtime() > c => c,
            _ => md.mtime(),
        };
        h.set_mtime(mtime.max(0) as u64);
        h.set_size(0);

        // xattrs first, as a PAX record for this entry
        let mut xattrs: Vec<(String, Vec<u8>)> = Vec::new();
        if let Ok(names) = xattr::list(path) {
            for n in names {
                if let Ok(Some(v)) = xattr::get(path, &n) {
                    xattrs.push((format!("SCHILY.xattr.{}", n.to_string_lossy()), v));
                }
            }
        }
        xattrs.sort();
        if !xattrs.is_empty() {
            b.append_pax_extensions(xattrs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(|e| err(path, e))?;
        }
        let with_slash = |n: &[u8]| {
            let mut v = n.to_vec();
            if v.last() != Some(&b'/') {
                v.push(b'/');
            }
            v
        };
        self.stats.entries += 1;
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            let n = with_slash(name);
            append_raw(b, &mut h, &n, None, io::empty()).map_err(|e| err(path, e))?;
            return Ok(true);
        }
        if md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = self.links.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                let first = first.clone();
                append_raw(b, &mut h, name, Some(&first), io::empty()).map_err(|e| err(path, e))?;
                return Ok(false);
            }
            self.links.insert(key, name.to_vec());
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(path).map_err(|e| err(path, e))?;
            h.set_entry_type(tar::EntryType::Symlink);
            append_raw(
                b,
                &mut h,
                name,
                Some(target.as_os_str().as_bytes()),
                io::empty(),
            )
            .map_err(|e| err(path, e))?;
        } else if let (true, Some(data)) = (ft.is_file(), self.opts.replace.get(&rel)) {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(data.len() as u64);
            self.stats.bytes += data.len() as u64;
            append_raw(b, &mut h, name, None, data.as_slice()).map_err(|e| err(path, e))?;
        } else if ft.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(md.len());
            self.stats.bytes += md.len();
            let f = std::fs::File::open(path).map_err(|e| err(path, e))?;
            append_raw(b, &mut h, name, None, f).map_err(|e| err(path, e))?;
        } else {
            let kind = if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else {
                tar::EntryType::Fifo
            };
            h.set_entry_type(kind);
            if kind != tar::EntryType::Fifo {
                let rdev = md.rdev();
                let (major, minor) = (libc::major(rdev), libc::minor(rdev));
                h.set_device_major(major).map_err(|e| err(path, e))?;
                h.set_device_minor(minor).map_err(|e| err(path, e))?;
            }
            append_raw(b, &mut h, name, None, io::empty()).map_err(|e| err(path, e))?;
        }
        Ok(false)
    }
}

/// Appends an entry with its name exactly as given (`./etc/hosts`: the tar crate's own path
/// setters drop the `./`), using GNU long-name records for names over 100 bytes.
fn append_raw<W: Write, R: io::Read>(
    b: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &[u8],
    link: Option<&[u8]>,
    data: R,
) -> io::Result<()> {
    let long = |kind: u8, value: &[u8], b: &mut tar::Builder<W>| -> io::Result<()> {
        let mut lh = tar::Header::new_gnu();
        let tag = b"././@LongLink";
        lh.as_old_mut().name[..tag.len()].copy_from_slice(tag);
        lh.set_entry_type(tar::EntryType::new(kind));
        lh.set_mode(0o644);
        lh.set_size(value.len() as u64 + 1);
        lh.set_cksum();
        let mut v = value.to_vec();
        v.push(0);
        b.append(&lh, v.as_slice())
    };
    if let Some(l) = link {
        if l.len() > 100 {
            long(b'K', l, b)?;
        }
        let field = &mut h.as_old_mut().linkname;
        let n = l.len().min(100);
        field[..n].copy_from_slice(&l[..n]);
    }
    if name.len() > 100 {
        long(b'L', name, b)?;
    }
    let field = &mut h.as_old_mut().name;
    field.fill(0);
    let n = name.len().min(100);
    field[..n].copy_from_slice(&name[..n]);
    h.set_cksum();
    b.append(h, data)
}

/// Appends a regular file with fixed metadata (root-owned, `mode`, `mtime`).
pub fn append_file<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
    mode: u32,
    mtime: i64,
) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime.max(0) as u64);
    h.set_size(data.len() as u64);
    append_raw(b, &mut h, name.as_bytes(), None, data)
}

/// Appends a root-owned directory entry.
pub fn append_dir<W: Write>(b: &mut tar::Builder<W>, name: &str, mtime: i64) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime.max(0) as u64);
    h.set_size(0);
    append_raw(b, &mut h, name.as_bytes(), None, io::empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries(data: &[u8]) -> Vec<(String, Vec<u8>, Option<String>)> {
        let mut ar = tar::Archive::new(data);
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                let link = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned());
                let mut body = Vec::new();
                e.read_to_end(&mut body).unwrap();
                (name, body, link)
            })
            .collect()
    }

    #[test]
    fn sorted_dot_prefixed_long_names_replacements_and_clamped_times() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b")).unwrap();
        std::fs::write(root.join("b/z"), "z").unwrap();
        std::fs::write(root.join("a"), "a").unwrap();
        let long = "d".repeat(120);
        std::fs::write(root.join(&long), "long").unwrap();
        std::os::unix::fs::symlink("a", root.join("link")).unwrap();
        std::fs::write(root.join("skip"), "x").unwrap();
        let mut opts = TarOptions {
            root_name: ".".into(),
            clamp_mtime: Some(1000),
            ..Default::default()
        };
        opts.replace.insert("a".into(), b"replaced".to_vec());
        opts.omit.insert("skip".into());
        opts.add.insert("extra".into(), b"added".to_vec());
        let write = || {
            let mut b = tar::Builder::new(Vec::new());
            write_tree(&mut b, root, &opts).unwrap();
            b.into_inner().unwrap()
        };
        let data = write();
        assert_eq!(data, write(), "the same tree gives the same bytes");
        let e = entries(&data);
        let names: Vec<&str> = e.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "./",
                "./a",
                "./b/",
                "./b/z",
                &format!("./{long}"),
                "./link",
                "./extra"
            ]
        );
        assert_eq!(e[1].1, b"replaced");
        assert_eq!(e[5].2.as_deref(), Some("a"));
        let mut ar = tar::Archive::new(data.as_slice());
        for entry in ar.entries().unwrap() {
            assert!(entry.unwrap().header().mtime().unwrap() <= 1000);
        }
    }
}
