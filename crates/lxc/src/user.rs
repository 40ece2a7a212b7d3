//! Containers of regular (non-root) users, as LXC has them: `~/.local/share/lxc`,
//! `~/.config/lxc/default.conf`, id maps granted by /etc/subuid and /etc/subgid, and the work on a
//! rootfs owned by mapped ids done as root of a user namespace with those maps.

use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};

use warren_runtime::spec::IdMap;
use warren_runtime::userns;

/// Whether warren-lxc runs as a regular user (containers in the user's own directories).
pub fn is_regular_user() -> bool {
    !nix::unistd::geteuid().is_root()
}

/// The user's home: `$HOME`, else the passwd entry.
fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.dir)
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => home().join(fallback),
    }
}

/// `~/.config/lxc` (`$XDG_CONFIG_HOME/lxc`).
pub fn config_dir() -> PathBuf {
    xdg("XDG_CONFIG_HOME", ".config").join("lxc")
}

/// A regular user's lxcpath: `lxc.lxcpath` of `~/.config/lxc/lxc.conf`, else
/// `~/.local/share/lxc` (`$XDG_DATA_HOME/lxc`), as LXC.
pub fn default_lxcpath() -> PathBuf {
    if let Some(p) = crate::common::lxcpath_from(&config_dir().join("lxc.conf")) {
        return p;
    }
    xdg("XDG_DATA_HOME", ".local/share").join("lxc")
}

/// A regular user's defaults for new containers: `~/.config/lxc/default.conf`.
pub fn default_config() -> PathBuf {
    config_dir().join("default.conf")
}

/// The defaults a regular user gets without a `~/.config/lxc/default.conf`: id maps from the
/// first large enough ranges /etc/subuid and /etc/subgid grant them (LXC needs the file written
/// by hand; the error names what to add when nothing is granted).
pub fn generated_default_conf() -> Result<String> {
    let user = userns::user_name(nix::unistd::getuid().as_raw())
        .ok_or_else(|| anyhow!("this uid has no passwd entry; newuidmap needs one"))?;
    let pick = |uid: bool| {
        let ranges = userns::my_ranges(uid);
        ranges
            .iter()
            .find(|r| r.count >= 65536)
            .or_else(|| ranges.iter().max_by_key(|r| r.count))
            .copied()
    };
    let (Some(u), Some(g)) = (pick(true), pick(false)) else {
        bail!(
            "user {user} has no subordinate ids: add \"{user}:100000:65536\" to /etc/subuid and /etc/subgid \
             (as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}), \
             or write lxc.idmap lines to {}",
            default_config().display()
        );
    };
    Ok(format!(
        "# id maps from /etc/subuid and /etc/subgid (write {} to choose others)\n\
         lxc.idmap = u 0 {} {}\nlxc.idmap = g 0 {} {}\n",
        default_config().display(),
        u.start,
        u.count.min(65536),
        g.start,
        g.count.min(65536)
    ))
}

/// The `lxc.idmap` lines of a config text.
pub fn idmaps_in(text: &str, file: &Path) -> Result<Vec<IdMap>> {
    let cfg = warren_lxc_config::Config::parse_str(text, file, &Default::default())
        .map_err(|e| anyhow!("{e}"))?;
    let mut out = Vec::new();
    for e in cfg.get_all("lxc.idmap") {
        out.extend(
            warren_lxc_config::value::parse_idmap(&e.value)
                .map_err(|w| anyhow!("lxc.idmap = {}: {w}", e.value))?,
        );
    }
    Ok(out)
}

/// Checks a regular user's container can have its maps: there are some, and /etc/subuid and
/// /etc/subgid grant them.
pub fn check_maps(maps: &[IdMap], config: &Path) -> Result<()> {
    if maps.is_empty() {
        bail!(
            "a regular user's containers must be unprivileged: {} has no lxc.idmap lines \
             (e.g. lxc.idmap = u 0 100000 65536 and lxc.idmap = g 0 100000 65536, from your /etc/subuid range)",
            config.display()
        );
    }
    userns::check_allowed(maps).map_err(|e| anyhow!("{e}"))
}

/// Runs `work` as root of a user namespace with the container's maps plus the user's own ids
/// (so the user's directories around the rootfs stay reachable).
pub fn as_container_root(
    maps: &[IdMap],
    work: impl FnOnce() -> Result<Vec<u8>, String>,
) -> Result<Vec<u8>> {
    userns::run_as_mapped_root(&userns::with_own_ids(maps), work).map_err(|e| anyhow!("{e}"))
}

/// Removes `path` (a container directory holding a rootfs owned by mapped ids) as the
/// container's root, where the user may remove every file.
pub fn remove_tree(maps: &[IdMap], path: &Path) -> Result<()> {
    let path = path.to_path_buf();
    as_container_root(maps, move || match std::fs::remove_dir_all(&path) {
        Ok(()) => Ok(Vec::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("remove {}: {e}", path.display())),
    })
    .map(|_| ())
}
