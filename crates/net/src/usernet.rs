//! lxc-usernet: veth interfaces on host bridges for regular users' containers, made by a
//! setuid-root helper (`warren-user-nic`) within what `/etc/lxc/lxc-usernet` allows
//! (`<user|@group> veth <bridge> <count>` lines; warren also reads
//! `/etc/lxc/lxc-usernet.d/*.conf`). Everything the caller gives is distrusted: the target
//! network namespace must belong to a user namespace the caller owns and is opened with the
//! caller's own credentials, the bridge must be allowed and be a bridge, the name must be a
//! valid interface name, the allowance is counted under a lock in a root-owned state file that
//! is never followed through a symlink.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::{Namespace, NetError, Netlink};

/// Where the allowances are: LXC's file, then warren's drop-ins.
pub const CONFIG_FILE: &str = "/etc/lxc/lxc-usernet";
pub const CONFIG_DIR: &str = "/etc/lxc/lxc-usernet.d";
/// The interfaces made so far, one `uid bridge host-name` line each.
pub const STATE_FILE: &str = "/run/warren/usernet/nics";

/// The most veths `user` (in `groups`) may have on `bridge`, from config `text`.
pub fn allowance(text: &str, user: &str, groups: &[String], bridge: &str) -> u32 {
    let mut best = 0;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 4 || f[1] != "veth" || f[2] != bridge {
            continue;
        }
        let who = f[0];
        let matches = match who.strip_prefix('@') {
            Some(g) => groups.iter().any(|x| x == g),
            None => who == user,
        };
        if matches {
            if let Ok(n) = f[3].parse::<u32>() {
                best = best.max(n);
            }
        }
    }
    best
}

/// All the allowance files' text: LXC's file and the drop-ins, in name order.
pub fn read_config() -> String {
    let mut text = std::fs::read_to_string(CONFIG_FILE).unwrap_or_default();
    let mut extra: Vec<PathBuf> = std::fs::read_dir(CONFIG_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    extra.sort();
    for p in extra {
        if let Ok(t) = std::fs::read_to_string(&p) {
            text.push('\n');
            text.push_str(&t);
        }
    }
    text
}

/// Opens (creating) the state file under an exclusive lock, refusing symlinks anywhere it is
/// looked up, directories that are not root's alone, and anything but a regular file owned by
/// root with one link.
pub fn open_state(path: &Path) -> Result<StateFile, NetError> {
    use nix::fcntl::{open, openat, OFlag};
    use nix::sys::stat::{fstat, Mode};
    let bad = |what: String| NetError::Invalid(format!("state file {}: {what}", path.display()));
    // (the caller's umask must not make our directories writable by others)
    nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
    let Some(dir) = path.parent() else {
        return Err(bad("no directory".into()));
    };
    let Some(file_name) = path.file_name() else {
        return Err(bad("no file name".into()));
    };
    // walk from / one component at a time, never through a symlink
    let mut cur: OwnedFd = open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| bad(e.to_string()))?;
    for c in dir.components().skip(1) {
        let name = c.as_os_str();
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let next = match openat(&cur, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => {
                nix::sys::stat::mkdirat(&cur, name, Mode::from_bits_truncate(0o755))
                    .map_err(|e| bad(format!("create {}: {e}", name.to_string_lossy())))?;
                openat(&cur, name, flags, Mode::empty()).map_err(|e| bad(e.to_string()))?
            }
            Err(e) => {
                return Err(bad(format!(
                    "{}: {e} (a symlink or not a directory)",
                    name.to_string_lossy()
                )))
            }
        };
        let st = fstat(&next).map_err(|e| bad(e.to_string()))?;
        // (a sticky directory such as /tmp is fine: nobody else can replace root's entries)
        if st.st_uid != 0 || (st.st_mode & 0o022 != 0 && st.st_mode & 0o1000 == 0) {
            return Err(bad(format!(
                "{} must be root's and writable by root alone",
                name.to_string_lossy()
            )));
        }
        cur = next;
    }
    let lock_name = format!("{}.lock", file_name.to_string_lossy());
    let fd: OwnedFd = openat(
        &cur,
        lock_name.as_str(),
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| bad(e.to_string()))?;
    let st = fstat(&fd).map_err(|e| bad(e.to_string()))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_uid != 0 || st.st_nlink != 1 {
        return Err(bad(
            "the lock is not a regular root-owned file with one link".into(),
        ));
    }
    let lock =
        nix::fcntl::Flock::lock(std::fs::File::from(fd), nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| bad(format!("lock: {e}")))?;
    Ok(StateFile {
        _lock: lock,
        dir: cur,
        name: file_name.to_string_lossy().into_owned(),
    })
}

/// The state file, locked (through a lock file beside it, so that it can be replaced whole).
pub struct StateFile {
    _lock: nix::fcntl::Flock<std::fs::File>,
    dir: OwnedFd,
    name: String,
}

impl StateFile {
    /// Its lines (none when it doesn't exist yet).
    pub fn read(&self) -> Result<String, NetError> {
        use nix::fcntl::{openat, OFlag};
        match openat(
            &self.dir,
            self.name.as_str(),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) {
            Ok(fd) => {
                let mut text = String::new();
                std::fs::File::from(fd)
                    .read_to_string(&mut text)
                    .map_err(|e| NetError::Invalid(format!("state file: {e}")))?;
                Ok(text)
            }
            Err(nix::errno::Errno::ENOENT) => Ok(String::new()),
            Err(e) => Err(NetError::Invalid(format!("state file: {e}"))),
        }
    }

    /// Replaces it whole (a new file renamed over it): a helper killed half-way leaves the old
    /// contents or the new, never an emptied file.
    pub fn replace(&self, text: &str) -> Result<(), NetError> {
        use nix::fcntl::{openat, renameat, OFlag};
        let tmp = format!("{}.new", self.name);
        let err = |e: String| NetError::Invalid(format!("state file: {e}"));
        let fd = openat(
            &self.dir,
            tmp.as_str(),
            OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_TRUNC
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .map_err(|e| err(e.to_string()))?;
        let mut f = std::fs::File::from(fd);
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_data())
            .map_err(|e| err(e.to_string()))?;
        renameat(&self.dir, tmp.as_str(), &self.dir, self.name.as_str())
            .map_err(|e| err(e.to_string()))
    }
}

/// Makes the helper immune to limits its caller set to make it fail half-way: a file-size
/// limit of 0 would fail the state file's write after the link is made.
pub fn reset_limits() {
    use nix::sys::resource::{setrlimit, Resource, RLIM_INFINITY};
    let _ = setrlimit(Resource::RLIMIT_FSIZE, RLIM_INFINITY, RLIM_INFINITY);
    let _ = setrlimit(Resource::RLIMIT_NOFILE, 1024, 1024);
}

/// What the helper was asked: a veth for the network namespace of `pid`, on `bridge`, named
/// `name` inside.
#[derive(Debug, Clone)]
pub struct Request {
    pub pid: i32,
    pub bridge: String,
    pub name: String,
}

/// Carries out `req` for the real user `uid` (name `user`, in `groups`); returns the host-side
/// name. Must run with effective uid 0 (setuid helper).
pub fn create_for_user(
    req: &Request,
    uid: u32,
    user: &str,
    groups: &[String],
    config: &str,
    state_path: &Path,
) -> Result<String, NetError> {
    crate::check_name(&req.name).map_err(NetError::Invalid)?;
    crate::check_name(&req.bridge).map_err(NetError::Invalid)?;
    let allowed = allowance(config, user, groups, &req.bridge);
    if allowed == 0 {
        return Err(NetError::Invalid(format!(
            "user {user} may not attach interfaces to {}: no \"{user} veth {} N\" line in {CONFIG_FILE}",
            req.bridge, req.bridge
        )));
    }
    // the namespace, held by a descriptor from here on (no pid to be reused), must belong to
    // a user namespace the caller owns
    let netns = open_ns(&format!("/proc/{}/ns/net", req.pid))?;
    match warren_sys::namespace_owner_uid(netns.as_fd()) {
        Ok(owner) if owner == uid => {}
        _ => return Err(not_yours()),
    }
    let mut nl = Netlink::open()?;
    match nl.link_kind(&req.bridge)? {
        Some(k) if k == "bridge" => {}
        _ => return Err(NetError::Invalid(format!("{} is not a bridge", req.bridge))),
    }
    let state = open_state(state_path)?;
    let text = state.read()?;
    // forget interfaces that are gone (their container stopped); only a link positively
    // absent is forgotten
    let live: Vec<String> = text
        .lines()
        .filter(|l| match l.split_whitespace().nth(2) {
            Some(n) => !matches!(nl.link_index(n), Err(NetError::NoSuchLink(_))),
            None => false,
        })
        .map(str::to_string)
        .collect();
    let mine = live
        .iter()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 3 && f[0] == uid.to_string() && f[1] == req.bridge
        })
        .count() as u32;
    if mine >= allowed {
        return Err(NetError::Invalid(format!(
            "user {user} has {mine} of {allowed} interfaces allowed on {} already",
            req.bridge
        )));
    }
    let host = crate::random_name("vethu");
    // recorded before it exists: a helper killed half-way leaves a line that is pruned next
    // time if the link never came, and counted if it did
    let mut out: String = live.iter().map(|l| format!("{l}\n")).collect();
    out.push_str(&format!("{uid} {} {host}\n", req.bridge));
    state.replace(&out)?;
    nl.create_veth(&host, &req.name, Namespace::OfFd(netns.as_raw_fd()))?;
    let made = (|| {
        let idx = nl.link_index(&host)?;
        let bi = nl.link_index(&req.bridge)?;
        nl.set_master(idx, bi)?;
        nl.set_up(idx)
    })();
    if let Err(e) = made {
        if let Ok(idx) = nl.link_index(&host) {
            let _ = nl.delete_link(idx);
        }
        return Err(e);
    }
    Ok(host)
}

/// Opens `path` read-only. (Opening it with the caller's credentials adds nothing: the gate is
/// the owner of the namespace's user namespace, checked by the caller of this.)
fn open_ns(path: &str) -> Result<OwnedFd, NetError> {
    nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|_| not_yours())
}

/// One answer for every namespace that is not the caller's, so that nothing is learnt about
/// whose it is.
fn not_yours() -> NetError {
    NetError::Invalid("that process's network namespace is not one of yours".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowances_by_user_and_group() {
        let text = "# comment\nalice veth lxcbr0 2\n@netters veth br1 3\nalice veth br1 1\nbob macvlan lxcbr0 9\nbroken line\n";
        assert_eq!(allowance(text, "alice", &[], "lxcbr0"), 2);
        assert_eq!(allowance(text, "alice", &["netters".into()], "br1"), 3);
        assert_eq!(allowance(text, "alice", &[], "br1"), 1);
        assert_eq!(allowance(text, "bob", &[], "lxcbr0"), 0);
        assert_eq!(allowance(text, "carol", &[], "lxcbr0"), 0);
    }

    #[test]
    fn the_state_file_is_never_a_symlink() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let d = tempfile::tempdir().expect("tempdir");
        let target = d.path().join("target");
        std::fs::write(&target, "x").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // a symlinked lock, or a hard link of some other file as the lock: refused
        std::os::unix::fs::symlink(&target, d.path().join("nics.lock")).expect("symlink");
        assert!(open_state(&d.path().join("nics")).is_err());
        std::fs::hard_link(&target, d.path().join("hard.lock")).expect("hard link");
        assert!(
            open_state(&d.path().join("hard")).is_err(),
            "a second link is refused too"
        );
        // a symlinked state file is never followed
        std::os::unix::fs::symlink(&target, d.path().join("sym")).expect("symlink");
        let st = open_state(&d.path().join("sym")).expect("lock");
        assert!(st.read().is_err());
        st.replace("1 br 2\n").expect("replace");
        assert_eq!(
            std::fs::read_to_string(&target).expect("target"),
            "x",
            "followed a symlink"
        );
        // a directory on the way that is a symlink, or writable by others: refused
        let dirlink = d.path().join("dirlink");
        std::os::unix::fs::symlink(d.path(), &dirlink).expect("dir symlink");
        assert!(open_state(&dirlink.join("nics")).is_err());
        let open_dir = d.path().join("open");
        std::fs::create_dir(&open_dir).expect("mkdir");
        std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(open_state(&open_dir.join("nics")).is_err());
        let ok = open_state(&d.path().join("real")).expect("a real one");
        assert_eq!(ok.read().expect("read"), "");
        ok.replace("5 br0 vethuabc\n").expect("replace");
        assert_eq!(ok.read().expect("read"), "5 br0 vethuabc\n");
    }
}
