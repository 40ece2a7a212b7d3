//! lxc-usernet: veth interfaces on host bridges for regular users' containers, made by a
//! setuid-root helper (`warren-user-nic`) within what `/etc/lxc/lxc-usernet` allows
//! (`<user|@group> veth <bridge> <count>` lines; warren also reads
//! `/etc/lxc/lxc-usernet.d/*.conf`). Everything the caller gives is distrusted: the target
//! network namespace must belong to a user namespace the caller owns and is opened with the
//! caller's own credentials, the bridge must be allowed and be a bridge, the name must be a
//! valid interface name, the allowance is counted under a lock in a root-owned state file that
//! is never followed through a symlink.

use std::io::{Read, Seek, Write};
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
/// looked up and anything but a regular file owned by root.
pub fn open_state(path: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, NetError> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    let bad = |what: String| NetError::Invalid(format!("state file {}: {what}", path.display()));
    if let Some(dir) = path.parent() {
        // each component made by us, root-owned, never through a symlink
        let mut cur = PathBuf::from("/");
        for c in dir.components().skip(1) {
            cur.push(c);
            match std::fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(bad(format!("{} is a symlink", cur.display())))
                }
                Ok(m) if !m.is_dir() => {
                    return Err(bad(format!("{} is not a directory", cur.display())))
                }
                Ok(_) => {}
                Err(_) => {
                    std::fs::create_dir(&cur)
                        .map_err(|e| bad(format!("create {}: {e}", cur.display())))?;
                }
            }
        }
    }
    let fd: OwnedFd = open(
        path,
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| bad(e.to_string()))?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| bad(e.to_string()))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_uid != 0 || st.st_nlink != 1 {
        return Err(bad("not a regular root-owned file with one link".into()));
    }
    let file = std::fs::File::from(fd);
    // held until the caller drops the guard
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| bad(format!("lock: {e}")))
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
    // the namespace, opened with the caller's own credentials (so only a process the caller
    // may inspect can be named), and owned by a user namespace of the caller's
    let netns = open_as(uid, &format!("/proc/{}/ns/net", req.pid))?;
    let owner = warren_sys::namespace_owner_uid(netns.as_fd())
        .map_err(|e| NetError::Invalid(format!("network namespace of pid {}: {e}", req.pid)))?;
    if owner != uid {
        return Err(NetError::Invalid(format!(
            "the network namespace of pid {} is not owned by user {user}",
            req.pid
        )));
    }
    let mut nl = Netlink::open()?;
    match nl.link_kind(&req.bridge)? {
        Some(k) if k == "bridge" => {}
        _ => return Err(NetError::Invalid(format!("{} is not a bridge", req.bridge))),
    }
    let mut state = open_state(state_path)?;
    let mut text = String::new();
    state
        .read_to_string(&mut text)
        .map_err(|e| NetError::Invalid(format!("state file: {e}")))?;
    // forget interfaces that are gone (their container stopped)
    let live: Vec<String> = text
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(2)
                .is_some_and(|n| nl.link_index(n).is_ok())
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
    nl.create_veth(&host, &req.name, Namespace::OfFd(netns.as_raw_fd()))?;
    let idx = nl.link_index(&host)?;
    let bi = nl.link_index(&req.bridge)?;
    let setup = nl.set_master(idx, bi).and_then(|_| nl.set_up(idx));
    if let Err(e) = setup {
        let _ = nl.delete_link(idx);
        return Err(e);
    }
    let mut out: String = live.iter().map(|l| format!("{l}\n")).collect();
    out.push_str(&format!("{uid} {} {host}\n", req.bridge));
    state
        .set_len(0)
        .and_then(|_| state.rewind())
        .and_then(|_| state.write_all(out.as_bytes()))
        .map_err(|e| NetError::Invalid(format!("state file: {e}")))?;
    Ok(host)
}

/// Opens `path` read-only with filesystem uid `uid` (the caller's, not root's).
fn open_as(uid: u32, path: &str) -> Result<OwnedFd, NetError> {
    let old = nix::unistd::setfsuid(uid.into());
    let r = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    );
    nix::unistd::setfsuid(old);
    r.map_err(|e| NetError::Invalid(format!("{path}: {e} (not a process of yours?)")))
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
        let link = d.path().join("nics");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(open_state(&link).is_err());
        let hard = d.path().join("hard");
        std::fs::hard_link(&target, &hard).expect("hard link");
        assert!(
            open_state(&hard).is_err(),
            "a second link to some file is refused too"
        );
        let ok = d.path().join("real");
        assert!(open_state(&ok).is_ok());
        let dirlink = d.path().join("dirlink");
        std::os::unix::fs::symlink(d.path(), &dirlink).expect("dir symlink");
        assert!(open_state(&dirlink.join("nics")).is_err());
    }
}
