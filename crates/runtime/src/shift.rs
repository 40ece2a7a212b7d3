//! Shifting a rootfs's ownership through an id map, for filesystems without idmapped mounts (what
//! LXD's fuidshift did), and the probe that tells whether a filesystem needs it.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::spec::IdMap;

#[derive(Debug, thiserror::Error)]
pub enum ShiftError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {kind} {id} is outside the id map ({map})")]
    Unmapped {
        path: PathBuf,
        kind: &'static str,
        id: u32,
        map: String,
    },
}

/// What a shift changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShiftStats {
    pub entries: u64,
}

/// `id` through the maps of one kind: container -> host, or host -> container with `reverse`.
pub fn map_id(maps: &[IdMap], uid: bool, id: u32, reverse: bool) -> Option<u32> {
    maps.iter().filter(|m| m.is_uid == uid).find_map(|m| {
        let (from, to) = if reverse {
            (m.host_id, m.container_id)
        } else {
            (m.container_id, m.host_id)
        };
        (id >= from && id - from < m.count).then(|| to + (id - from))
    })
}

fn describe(maps: &[IdMap]) -> String {
    maps.iter()
        .map(|m| {
            format!(
                "{} {} {} {}",
                if m.is_uid { "u" } else { "g" },
                m.container_id,
                m.host_id,
                m.count
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Change the owner of every entry under `root` (symlinks themselves, never followed; device
/// nodes included) through `maps`. The setuid/setgid bits chown clears are put back.
///
/// The walk goes by directory descriptors, each opened with O_NOFOLLOW from its parent's, and
/// every change is made relative to one: a directory swapped for a symlink during the walk (by
/// anything still running on that rootfs) can't send a chown outside it.
pub fn shift_tree(root: &Path, maps: &[IdMap], reverse: bool) -> Result<ShiftStats, ShiftError> {
    use nix::fcntl::{openat, AtFlags, OFlag};
    use nix::sys::stat::{fchmodat, fstatat, FchmodatFlags, Mode};
    use nix::unistd::{fchownat, Gid, Uid};
    use std::os::fd::OwnedFd;
    let mut stats = ShiftStats::default();
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |e: nix::Error| ShiftError::Io {
            path,
            source: e.into(),
        }
    };
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let root_fd: OwnedFd = nix::fcntl::open(root, dir_flags, Mode::empty()).map_err(err(root))?;
    // a file with several hard links is shifted once: seen again, it carries the new ids already
    let mut linked: std::collections::HashSet<(u64, u64)> = std::collections::HashSet::new();
    // (directory descriptor, its path for messages); the root itself first
    let mut shift_one = |dir: Option<&OwnedFd>,
                         name: &std::ffi::OsStr,
                         path: &Path|
     -> Result<Option<bool>, ShiftError> {
        let st = match dir {
            Some(d) => fstatat(d, name, AtFlags::AT_SYMLINK_NOFOLLOW),
            None => nix::sys::stat::fstat(&root_fd),
        }
        .map_err(err(path))?;
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let is_link = st.st_mode & libc::S_IFMT == libc::S_IFLNK;
        if !is_dir && st.st_nlink > 1 && !linked.insert((st.st_dev, st.st_ino)) {
            stats.entries += 1;
            return Ok(Some(false));
        }
        let uid = map_id(maps, true, st.st_uid, reverse).ok_or_else(|| ShiftError::Unmapped {
            path: path.to_path_buf(),
            kind: "uid",
            id: st.st_uid,
            map: describe(maps),
        })?;
        let gid = map_id(maps, false, st.st_gid, reverse).ok_or_else(|| ShiftError::Unmapped {
            path: path.to_path_buf(),
            kind: "gid",
            id: st.st_gid,
            map: describe(maps),
        })?;
        if uid != st.st_uid || gid != st.st_gid {
            let (u, g) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
            match dir {
                Some(d) => fchownat(d, name, u, g, AtFlags::AT_SYMLINK_NOFOLLOW),
                None => nix::unistd::fchown(&root_fd, u, g),
            }
            .map_err(err(path))?;
            let special = st.st_mode & 0o6000;
            if special != 0 && !is_link {
                let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
                match dir {
                    // (fchmodat never follows a final symlink on Linux: not one here anyway)
                    Some(d) => fchmodat(d, name, mode, FchmodatFlags::FollowSymlink),
                    None => nix::sys::stat::fchmod(&root_fd, mode),
                }
                .map_err(err(path))?;
            }
        }
        stats.entries += 1;
        Ok(Some(is_dir))
    };
    shift_one(None, std::ffi::OsStr::new("."), root)?;
    let mut stack: Vec<(OwnedFd, PathBuf)> = vec![(
        root_fd.try_clone().map_err(|e| ShiftError::Io {
            path: root.to_path_buf(),
            source: e,
        })?,
        root.to_path_buf(),
    )];
    while let Some((dir, path)) = stack.pop() {
        let mut names = Vec::new();
        {
            let dup = dir.try_clone().map_err(|e| ShiftError::Io {
                path: path.clone(),
                source: e,
            })?;
            let mut d = nix::dir::Dir::from_fd(dup).map_err(err(&path))?;
            for e in d.iter() {
                let e = e.map_err(err(&path))?;
                let n = e.file_name().to_bytes();
                if n == b"." || n == b".." {
                    continue;
                }
                names.push(std::ffi::OsString::from(std::ffi::OsStr::from_bytes(n)));
            }
        }
        for name in names {
            let child = path.join(&name);
            if shift_one(Some(&dir), &name, &child)? == Some(true) {
                // a directory that is a symlink by now is refused by O_NOFOLLOW
                let fd = openat(&dir, name.as_os_str(), dir_flags, Mode::empty())
                    .map_err(err(&child))?;
                stack.push((fd, child));
            }
        }
    }
    Ok(stats)
}

/// Whether the filesystem holding `path` supports idmapped mounts: make a throwaway user
/// namespace (a child process that unshares one), map it, and try.
pub fn idmapped_mounts_supported(path: &Path) -> bool {
    let Ok(tree) = warren_sys::open_tree_clone(path) else {
        return false;
    };
    let Ok((parent_end, child_end)) = std::os::unix::net::UnixStream::pair() else {
        return false;
    };
    use std::io::{Read, Write};
    match warren_sys::fork_process() {
        Ok(warren_sys::Forked::Child) => {
            drop(parent_end);
            let mut child_end = child_end;
            let ok = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok();
            let _ = child_end.write_all(if ok { b"u" } else { b"x" });
            let mut b = [0u8; 1];
            let _ = child_end.read(&mut b);
            warren_sys::exit_now(0);
        }
        Ok(warren_sys::Forked::Parent(pid)) => {
            drop(child_end);
            let mut parent_end = parent_end;
            let mut b = [0u8; 1];
            let mut supported = false;
            if parent_end.read_exact(&mut b).is_ok() && &b == b"u" {
                let mapped = std::fs::write(format!("/proc/{pid}/uid_map"), "0 100000 1\n").is_ok()
                    && std::fs::write(format!("/proc/{pid}/gid_map"), "0 100000 1\n").is_ok();
                if mapped {
                    if let Ok(ns) = std::fs::File::open(format!("/proc/{pid}/ns/user")) {
                        supported = warren_sys::idmap_mount(
                            std::os::fd::AsFd::as_fd(&tree),
                            std::os::fd::AsFd::as_fd(&ns),
                        )
                        .is_ok();
                    }
                }
            }
            let _ = parent_end.write_all(b"q");
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            supported
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn maps() -> Vec<IdMap> {
        vec![
            IdMap {
                is_uid: true,
                container_id: 0,
                host_id: 100000,
                count: 65536,
            },
            IdMap {
                is_uid: false,
                container_id: 0,
                host_id: 100000,
                count: 65536,
            },
        ]
    }

    #[test]
    fn ids_map_both_ways() {
        let m = maps();
        assert_eq!(map_id(&m, true, 0, false), Some(100000));
        assert_eq!(map_id(&m, true, 1000, false), Some(101000));
        assert_eq!(map_id(&m, true, 101000, true), Some(1000));
        assert_eq!(map_id(&m, false, 70000, false), None);
    }

    #[test]
    fn shift_and_back_keeps_setuid_and_symlinks() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("r");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/su"), "x").unwrap();
        std::fs::set_permissions(root.join("bin/su"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        std::fs::hard_link(root.join("bin/su"), root.join("bin/su2")).unwrap();
        let st = shift_tree(&root, &maps(), false).unwrap();
        assert_eq!(st.entries, 5);
        let su = std::fs::metadata(root.join("bin/su")).unwrap();
        assert_eq!((su.uid(), su.mode() & 0o7777), (100000, 0o4755));
        assert_eq!(
            std::fs::symlink_metadata(root.join("link")).unwrap().uid(),
            100000
        );
        // the symlink's target (the host's /etc/passwd) was not touched
        assert_eq!(std::fs::metadata("/etc/passwd").unwrap().uid(), 0);
        shift_tree(&root, &maps(), true).unwrap();
        assert_eq!(std::fs::metadata(root.join("bin/su")).unwrap().uid(), 0);
        // an id outside the map is an error naming the file
        std::os::unix::fs::lchown(root.join("bin/su"), Some(70000), None).unwrap();
        let e = shift_tree(&root, &maps(), false).unwrap_err().to_string();
        assert!(e.contains("bin/su") && e.contains("70000"), "{e}");
    }
}
