//! User namespaces for regular users: which id ranges /etc/subuid and /etc/subgid grant them,
//! writing a namespace's maps through the setuid helpers newuidmap/newgidmap, and running a piece
//! of work as the root of a throwaway namespace with a container's maps (templates that make a
//! rootfs, destroy that removes one).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::spec::IdMap;

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    /// The map asks for host ids the user was not granted; the message says which line to add.
    #[error("{0}")]
    NotAllowed(String),
    #[error("{0}")]
    Helper(String),
    #[error("{what}: {source}")]
    Sys {
        what: String,
        source: std::io::Error,
    },
    /// The work done inside the namespace failed; its own message.
    #[error("{0}")]
    Work(String),
}

/// One line of /etc/subuid or /etc/subgid that applies to a user: `start` and `count` host ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubIdRange {
    pub start: u32,
    pub count: u32,
}

/// The file that grants subordinate ids: /etc/subuid for uids, /etc/subgid for gids.
pub fn subid_file(uid: bool) -> &'static Path {
    Path::new(if uid { "/etc/subuid" } else { "/etc/subgid" })
}

/// The ranges of `text` (subuid format, `name-or-id:start:count`) that belong to the user `name`
/// with id `id`.
pub fn ranges_in(text: &str, name: &str, id: u32) -> Vec<SubIdRange> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split(':');
        let (Some(owner), Some(start), Some(count)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if owner != name && owner.parse::<u32>().ok() != Some(id) {
            continue;
        }
        if let (Ok(start), Ok(count)) = (start.parse(), count.parse()) {
            out.push(SubIdRange { start, count });
        }
    }
    out
}

/// The name of the user `uid` (from the passwd database), for subuid lookups and messages.
pub fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// The calling user's subordinate ranges for uids or gids.
pub fn my_ranges(uid: bool) -> Vec<SubIdRange> {
    let me = if uid {
        nix::unistd::getuid().as_raw()
    } else {
        nix::unistd::getgid().as_raw()
    };
    let name = if uid {
        user_name(me)
    } else {
        nix::unistd::Group::from_gid(me.into())
            .ok()
            .flatten()
            .map(|g| g.name)
            // newgidmap looks gid ranges up by the user's name
            .or_else(|| user_name(nix::unistd::getuid().as_raw()))
    };
    let uname = user_name(nix::unistd::getuid().as_raw()).unwrap_or_default();
    let text = std::fs::read_to_string(subid_file(uid)).unwrap_or_default();
    let mut out = ranges_in(&text, &uname, nix::unistd::getuid().as_raw());
    if let Some(n) = name {
        if n != uname {
            out.extend(ranges_in(&text, &n, me));
        }
    }
    out
}

/// Checks that every `is_uid` map in `maps` lies inside one of `granted` (or is the caller's own
/// id, which newuidmap always allows). The error names the line to add to the file.
pub fn check_maps_against(
    maps: &[IdMap],
    is_uid: bool,
    granted: &[SubIdRange],
    user: &str,
    own_id: u32,
) -> Result<(), UsernsError> {
    for m in maps.iter().filter(|m| m.is_uid == is_uid) {
        if m.count == 1 && m.host_id == own_id {
            continue;
        }
        let end = u64::from(m.host_id) + u64::from(m.count);
        let inside = granted
            .iter()
            .any(|r| m.host_id >= r.start && end <= u64::from(r.start) + u64::from(r.count));
        if !inside {
            let (file, flag, kind) = if is_uid {
                ("/etc/subuid", "--add-subuids", "u")
            } else {
                ("/etc/subgid", "--add-subgids", "g")
            };
            return Err(UsernsError::NotAllowed(format!(
                "lxc.idmap = {kind} {} {} {} is not allowed for user {user} by {file}: add the line \"{user}:{}:{}\" to {file} (as root: usermod {flag} {}-{} {user})",
                m.container_id,
                m.host_id,
                m.count,
                m.host_id,
                m.count,
                m.host_id,
                end - 1
            )));
        }
    }
    Ok(())
}

/// Checks the caller (a regular user) may set up `maps` through newuidmap/newgidmap: the helpers
/// are installed and /etc/subuid and /etc/subgid grant every host range.
pub fn check_allowed(maps: &[IdMap]) -> Result<(), UsernsError> {
    if !maps.iter().any(|m| m.is_uid) || !maps.iter().any(|m| !m.is_uid) {
        return Err(UsernsError::NotAllowed(
            "a regular user's container needs lxc.idmap lines for both uids (u) and gids (g)"
                .into(),
        ));
    }
    helper("newuidmap")?;
    helper("newgidmap")?;
    let uid = nix::unistd::getuid().as_raw();
    let user = user_name(uid).ok_or_else(|| {
        UsernsError::NotAllowed(format!(
            "uid {uid} has no entry in the passwd database, which newuidmap needs"
        ))
    })?;
    check_maps_against(maps, true, &my_ranges(true), &user, uid)?;
    check_maps_against(
        maps,
        false,
        &my_ranges(false),
        &user,
        nix::unistd::getgid().as_raw(),
    )
}

/// Where the setuid helper `name` is installed.
fn helper(name: &str) -> Result<PathBuf, UsernsError> {
    for dir in ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(UsernsError::Helper(format!(
        "{name} is not installed: a regular user's containers need it (apt-get install uidmap)"
    )))
}

/// Writes the id maps of process `pid`'s user namespace through newuidmap and newgidmap.
pub fn write_maps_with_helpers(pid: i32, maps: &[IdMap]) -> Result<(), UsernsError> {
    for (name, is_uid) in [("newuidmap", true), ("newgidmap", false)] {
        let mut args = vec![pid.to_string()];
        for m in maps.iter().filter(|m| m.is_uid == is_uid) {
            args.push(m.container_id.to_string());
            args.push(m.host_id.to_string());
            args.push(m.count.to_string());
        }
        let out = Command::new(helper(name)?)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| UsernsError::Sys {
                what: format!("run {name}"),
                source,
            })?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            return Err(UsernsError::Helper(format!(
                "{name} {} failed: {}",
                args.join(" "),
                text.trim()
            )));
        }
    }
    Ok(())
}

/// `maps` plus the caller's own uid and gid, mapped to the first container id the maps leave
/// free, so that work in the namespace can also reach the user's own files (the container's
/// directory around its rootfs).
pub fn with_own_ids(maps: &[IdMap]) -> Vec<IdMap> {
    let mut out = maps.to_vec();
    for (is_uid, own) in [
        (true, nix::unistd::getuid().as_raw()),
        (false, nix::unistd::getgid().as_raw()),
    ] {
        let same: Vec<&IdMap> = maps.iter().filter(|m| m.is_uid == is_uid).collect();
        if same
            .iter()
            .any(|m| own >= m.host_id && own - m.host_id < m.count)
        {
            continue;
        }
        let free = same
            .iter()
            .map(|m| m.container_id.saturating_add(m.count))
            .max()
            .unwrap_or(0);
        out.push(IdMap {
            is_uid,
            container_id: free,
            host_id: own,
            count: 1,
        });
    }
    out
}

/// Runs `work` as root of a new user namespace with `maps` (written through newuidmap/newgidmap)
/// in a child process, and returns what it returned. The caller must be single-threaded.
pub fn run_as_mapped_root(
    maps: &[IdMap],
    work: impl FnOnce() -> Result<Vec<u8>, String>,
) -> Result<Vec<u8>, UsernsError> {
    let sys = |what: &str| {
        let what = what.to_string();
        move |source: std::io::Error| UsernsError::Sys { what, source }
    };
    let (mut parent, mut child) = UnixStream::pair().map_err(sys("socket pair"))?;
    match warren_sys::fork_process().map_err(sys("fork"))? {
        warren_sys::Forked::Child => {
            drop(parent);
            let result = (|| -> Result<Vec<u8>, String> {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
                    .map_err(|e| format!("new user namespace: {e}"))?;
                child
                    .write_all(b"r")
                    .map_err(|e| format!("talk to the parent: {e}"))?;
                let mut go = [0u8; 1];
                if child.read(&mut go).unwrap_or(0) != 1 {
                    return Err(String::new());
                }
                nix::unistd::setresgid(0.into(), 0.into(), 0.into())
                    .map_err(|e| format!("become root in the user namespace (gid): {e}"))?;
                let _ = nix::unistd::setgroups(&[]);
                nix::unistd::setresuid(0.into(), 0.into(), 0.into())
                    .map_err(|e| format!("become root in the user namespace (uid): {e}"))?;
                work()
            })();
            let (tag, body) = match result {
                Ok(b) => (b'o', b),
                Err(e) => (b'e', e.into_bytes()),
            };
            let _ = child.write_all(&[tag]).and_then(|_| child.write_all(&body));
            drop(child);
            warren_sys::exit_now(0)
        }
        warren_sys::Forked::Parent(pid) => {
            drop(child);
            let reap = || {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            };
            let mut ready = [0u8; 1];
            let mut outcome = match parent.read(&mut ready) {
                Ok(1) => write_maps_with_helpers(pid, maps),
                _ => Err(UsernsError::Work(String::new())),
            };
            if outcome.is_ok() {
                outcome = parent.write_all(b"g").map_err(sys("talk to the child"));
            }
            // a failed map leaves the child waiting: closing our end tells it to give up
            let mut reply = Vec::new();
            if outcome.is_err() {
                let _ = parent.shutdown(std::net::Shutdown::Both);
            } else {
                let _ = parent.read_to_end(&mut reply);
            }
            drop(parent);
            reap();
            outcome?;
            match reply.split_first() {
                Some((b'o', body)) => Ok(body.to_vec()),
                Some((_, body)) => Err(UsernsError::Work(
                    String::from_utf8_lossy(body).into_owned(),
                )),
                None => Err(UsernsError::Work(
                    "the process in the user namespace died without a word".into(),
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(is_uid: bool, c: u32, h: u32, n: u32) -> IdMap {
        IdMap {
            is_uid,
            container_id: c,
            host_id: h,
            count: n,
        }
    }

    #[test]
    fn ranges_by_name_or_id() {
        let text = "# comment\nalice:100000:65536\n1001:300000:65536\nbob:200000:65536\nbroken\n";
        assert_eq!(
            ranges_in(text, "alice", 1000),
            vec![SubIdRange {
                start: 100000,
                count: 65536
            }]
        );
        assert_eq!(ranges_in(text, "carol", 1001)[0].start, 300000);
        assert!(ranges_in(text, "dave", 1002).is_empty());
    }

    #[test]
    fn map_outside_the_grant_names_the_line_to_add() {
        let granted = [SubIdRange {
            start: 100000,
            count: 65536,
        }];
        assert!(check_maps_against(
            &[map(true, 0, 100000, 65536)],
            true,
            &granted,
            "alice",
            1000
        )
        .is_ok());
        // the user's own id needs no grant
        assert!(
            check_maps_against(&[map(true, 0, 1000, 1)], true, &granted, "alice", 1000).is_ok()
        );
        let err = check_maps_against(
            &[map(true, 0, 100000, 65537)],
            true,
            &granted,
            "alice",
            1000,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("\"alice:100000:65537\" to /etc/subuid")
                && err.contains("usermod --add-subuids 100000-165536 alice"),
            "{err}"
        );
        let err = check_maps_against(&[map(false, 0, 5, 1)], false, &[], "alice", 1000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/etc/subgid"), "{err}");
    }

    #[test]
    fn own_ids_go_after_the_container_range() {
        let maps = [map(true, 0, 100000, 65536), map(false, 0, 100000, 65536)];
        let all = with_own_ids(&maps);
        assert_eq!(all.len(), 4);
        assert!(all
            .iter()
            .any(|m| m.is_uid && m.container_id == 65536 && m.count == 1));
    }
}
