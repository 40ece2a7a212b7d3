//! `lxc-snapshot`: full-copy snapshots of a stopped dir-backed container under
//! `<lxcpath>/<name>/snaps/snapN/` (config, rootfs, ts, comment, as LXC lays them out); listing,
//! restoring (in place or as a new container) and destroying them.

use anyhow::{anyhow, bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

use crate::cmd::copy::{clone_into, ensure_stopped, rootfs_of, CloneJob};
use crate::common::{check_name, Common, Container};
use warren_lxc_config::Config;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Store the contents of FILE as the new snapshot's comment
    #[arg(short = 'c', long = "comment", value_name = "FILE")]
    pub comment: Option<PathBuf>,
    /// List the container's snapshots
    #[arg(short = 'L', long = "list")]
    pub list: bool,
    /// With -L, show each snapshot's comment
    #[arg(short = 'C', long = "showcomments")]
    pub showcomments: bool,
    /// Restore snapshot SNAP (replacing the container's rootfs and config, or as -N NEWNAME)
    #[arg(short = 'r', long = "restore", value_name = "SNAP")]
    pub restore: Option<String>,
    /// With -r, restore into a new container NEWNAME instead of the original
    #[arg(short = 'N', long = "newname", value_name = "NEWNAME")]
    pub newname: Option<String>,
    /// Destroy snapshot SNAP (ALL destroys every snapshot)
    #[arg(short = 'd', long = "destroy", value_name = "SNAP")]
    pub destroy: Option<String>,
}

pub fn run(args: Args) -> Result<i32> {
    let c = Container::locate(&args.common, None, true)?;
    let actions = [args.list, args.restore.is_some(), args.destroy.is_some()];
    if actions.iter().filter(|a| **a).count() > 1 {
        bail!("use only one of -L, -r and -d");
    }
    if args.newname.is_some() && args.restore.is_none() {
        bail!("-N NEWNAME only goes with -r SNAP");
    }
    if args.showcomments && !args.list {
        bail!("-C only goes with -L");
    }
    if args.list {
        return list(&c, args.showcomments);
    }
    if let Some(snap) = &args.restore {
        return restore(&c, snap, args.newname.as_deref());
    }
    if let Some(snap) = &args.destroy {
        return destroy(&c, snap);
    }
    create(&c, args.comment.as_deref())
}

fn snaps_dir(c: &Container) -> PathBuf {
    c.dir().join("snaps")
}

/// A snapshot name given by the user names a directory right under snaps/: nothing else.
fn check_snap_name(snap: &str) -> Result<()> {
    if snap.is_empty() || snap.contains('/') || snap.starts_with('.') {
        bail!("invalid snapshot name \"{snap}\"");
    }
    Ok(())
}

/// The snapshots on disk (directories under snaps/ holding a config), snap0, snap1, ... in
/// numeric order, other names after them.
fn snapshots(c: &Container) -> Result<Vec<String>> {
    let dir = snaps_dir(c);
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("read {}", dir.display())),
    };
    let mut names = Vec::new();
    for e in rd {
        let e = e.with_context(|| format!("read {}", dir.display()))?;
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !name.starts_with('.') && e.path().join("config").is_file() {
            names.push(name);
        }
    }
    names.sort_by_key(|n| (snap_number(n).unwrap_or(u64::MAX), n.clone()));
    Ok(names)
}

fn snap_number(name: &str) -> Option<u64> {
    name.strip_prefix("snap")?.parse().ok()
}

/// LXC's snapshot timestamp, local time: "2026:11:29 05:00:00".
fn timestamp() -> String {
    // localtime_r needs unsafe code, which this crate forbids; date(1) knows the time zone
    let out = std::process::Command::new("date")
        .arg("+%Y:%m:%d %H:%M:%S")
        .stderr(std::process::Stdio::null())
        .output();
    if let Ok(o) = out {
        let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if o.status.success() && !s.is_empty() {
            return s;
        }
    }
    utc_timestamp()
}

/// The same format in UTC, from the system clock alone.
fn utc_timestamp() -> String {
    let c = warren_image::time::civil(warren_image::time::unix_now());
    format!(
        "{:04}:{:02}:{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

fn create(c: &Container, comment: Option<&Path>) -> Result<i32> {
    ensure_stopped(
        c,
        "warren's snapshots are full copies, which need a stopped container (LXC snapshots running ones only on overlay or btrfs)",
    )?;
    let comment_text = match comment {
        Some(p) => Some(fs::read(p).with_context(|| format!("read comment file {}", p.display()))?),
        None => None,
    };
    let cfg = c.load_config()?;
    let rootfs = rootfs_of(&cfg, &c.dir())?;
    if !rootfs.is_dir() {
        bail!(
            "the rootfs of {} is missing: {} is not a directory",
            c.name,
            rootfs.display()
        );
    }
    let dir = snaps_dir(c);
    let mut n = 0u64;
    let snap_dir = loop {
        let d = dir.join(format!("snap{n}"));
        if fs::symlink_metadata(&d).is_err() {
            break d;
        }
        n += 1;
    };
    // the snapshot keeps the container's name and MACs: restoring gives the container back as it was
    clone_into(&CloneJob {
        src_config: &c.config_path,
        src_dir: &c.dir(),
        src_rootfs: &rootfs,
        skip: &[],
        dst_dir: &snap_dir,
        final_dir: &snap_dir,
        uts_name: None,
        new_macs: false,
    })?;
    let finish = || -> Result<()> {
        let ts = snap_dir.join("ts");
        fs::write(&ts, timestamp()).with_context(|| format!("write {}", ts.display()))?;
        if let Some(text) = &comment_text {
            let p = snap_dir.join("comment");
            fs::write(&p, text).with_context(|| format!("write {}", p.display()))?;
        }
        Ok(())
    };
    if let Err(e) = finish() {
        let _ = fs::remove_dir_all(&snap_dir);
        return Err(e);
    }
    Ok(0)
}

fn list(c: &Container, comments: bool) -> Result<i32> {
    let snaps = snapshots(c)?;
    if snaps.is_empty() {
        println!("No snapshots");
        return Ok(0);
    }
    let dir = snaps_dir(c);
    for s in snaps {
        let ts = fs::read_to_string(dir.join(&s).join("ts")).unwrap_or_default();
        println!(
            "{s} ({}) {}",
            dir.display(),
            ts.lines().next().unwrap_or("").trim()
        );
        if comments {
            if let Ok(text) = fs::read_to_string(dir.join(&s).join("comment")) {
                print!("{text}");
                if !text.is_empty() && !text.ends_with('\n') {
                    println!();
                }
            }
        }
    }
    Ok(0)
}

fn destroy(c: &Container, snap: &str) -> Result<i32> {
    let dir = snaps_dir(c);
    let victims = if snap == "ALL" {
        snapshots(c)?
    } else {
        check_snap_name(snap)?;
        if !dir.join(snap).join("config").is_file() {
            bail!("{} has no snapshot {snap}", c.name);
        }
        vec![snap.to_string()]
    };
    for s in &victims {
        let p = dir.join(s);
        fs::remove_dir_all(&p).with_context(|| format!("remove snapshot {}", p.display()))?;
    }
    // an empty snaps/ left behind would only be noise; it is not there for the unsnapshotted either
    let _ = fs::remove_dir(&dir);
    Ok(0)
}

fn restore(c: &Container, snap: &str, newname: Option<&str>) -> Result<i32> {
    check_snap_name(snap)?;
    let snap_dir = snaps_dir(c).join(snap);
    let snap_config = snap_dir.join("config");
    if !snap_config.is_file() {
        bail!("{} has no snapshot {snap}", c.name);
    }
    let snap_cfg = Config::load(&snap_config).map_err(|e| anyhow!("{e}"))?;
    let snap_rootfs = rootfs_of(&snap_cfg, &snap_dir)?;
    if !snap_rootfs.is_dir() {
        bail!(
            "snapshot {snap} is damaged: its rootfs {} is missing",
            snap_rootfs.display()
        );
    }
    match newname {
        Some(n) if n != c.name => restore_as(c, &snap_dir, &snap_rootfs, n),
        _ => restore_in_place(c, &snap_dir, &snap_rootfs),
    }
}

/// `-r SNAP -N NEWNAME`: a new container from the snapshot, named NEWNAME.
fn restore_as(c: &Container, snap_dir: &Path, snap_rootfs: &Path, newname: &str) -> Result<i32> {
    check_name(newname)?;
    let dst = c.lxcpath.join(newname);
    if fs::symlink_metadata(&dst).is_ok() {
        bail!("{newname} already exists ({})", dst.display());
    }
    clone_into(&CloneJob {
        src_config: &snap_dir.join("config"),
        src_dir: snap_dir,
        src_rootfs: snap_rootfs,
        skip: &["ts", "comment"],
        dst_dir: &dst,
        final_dir: &dst,
        uts_name: Some(newname),
        new_macs: false,
    })?;
    Ok(0)
}

/// `-r SNAP`: the container's config, rootfs and other files replaced by the snapshot's. The
/// snapshot is first copied next to them (inside the container directory, so the swap is a few
/// renames on one filesystem), then swapped in; the old files are removed only once all of the
/// new ones are in place, and put back if the swap fails half way.
fn restore_in_place(c: &Container, snap_dir: &Path, snap_rootfs: &Path) -> Result<i32> {
    ensure_stopped(
        c,
        "only a stopped container's snapshot can be restored in place",
    )?;
    let dir = c.dir();
    let old_rootfs = c
        .load_config()
        .ok()
        .and_then(|cfg| rootfs_of(&cfg, &dir).ok());
    let stage = dir.join(".warren-restore-new");
    let trash = dir.join(".warren-restore-old");
    for leftover in [&stage, &trash] {
        if fs::symlink_metadata(leftover).is_ok() {
            fs::remove_dir_all(leftover).with_context(|| {
                format!(
                    "remove the leftover of an interrupted restore, {}",
                    leftover.display()
                )
            })?;
        }
    }
    clone_into(&CloneJob {
        src_config: &snap_dir.join("config"),
        src_dir: snap_dir,
        src_rootfs: snap_rootfs,
        skip: &["ts", "comment"],
        dst_dir: &stage,
        final_dir: &dir,
        uts_name: None,
        new_macs: false,
    })?;
    let result = swap_in(&stage, &dir, &trash);
    let _ = fs::remove_dir_all(&stage);
    result?;
    fs::remove_dir_all(&trash)
        .with_context(|| format!("remove the replaced files in {}", trash.display()))?;
    if let Some(old) = old_rootfs.filter(|p| !p.starts_with(&dir)) {
        eprintln!(
            "note: {} now uses {}; its previous rootfs {} was left in place",
            c.name,
            dir.join("rootfs").display(),
            old.display()
        );
    }
    Ok(0)
}

/// Moves every entry of `stage` into `dir`, moving what it replaces into `trash` first.
fn swap_in(stage: &Path, dir: &Path, trash: &Path) -> Result<()> {
    fs::create_dir(trash).with_context(|| format!("create {}", trash.display()))?;
    let mut names = Vec::new();
    for e in fs::read_dir(stage).with_context(|| format!("read {}", stage.display()))? {
        names.push(
            e.with_context(|| format!("read {}", stage.display()))?
                .file_name(),
        );
    }
    // the config last, so an interruption never pairs the new config with the old rootfs
    names.sort_by_key(|n| n == "config");
    let mut moved: Vec<(std::ffi::OsString, bool)> = Vec::new();
    for name in &names {
        let target = dir.join(name);
        let replaced = fs::symlink_metadata(&target).is_ok();
        let step = || -> std::io::Result<()> {
            if replaced {
                fs::rename(&target, trash.join(name))?;
            }
            fs::rename(stage.join(name), &target)
        };
        if let Err(e) = step() {
            // undo: new entries back to the stage, old ones back in place
            for (n, had_old) in moved.iter().rev() {
                let _ = fs::rename(dir.join(n), stage.join(n));
                if *had_old {
                    let _ = fs::rename(trash.join(n), dir.join(n));
                }
            }
            if replaced && fs::symlink_metadata(&target).is_err() {
                let _ = fs::rename(trash.join(name), &target);
            }
            return Err(e).with_context(|| {
                format!(
                    "move the restored {} into {}",
                    name.to_string_lossy(),
                    dir.display()
                )
            });
        }
        moved.push((name.clone(), replaced));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamp_has_lxc_shape() {
        let ts = utc_timestamp();
        assert_eq!(ts.len(), 19, "{ts}");
        assert_eq!(&ts[4..5], ":");
        assert_eq!(&ts[10..11], " ");
    }

    #[test]
    fn snapshots_sort_numerically() {
        let mut v = vec![
            "snap10".to_string(),
            "snap2".to_string(),
            "other".to_string(),
        ];
        v.sort_by_key(|n| (snap_number(n).unwrap_or(u64::MAX), n.clone()));
        assert_eq!(v, ["snap2", "snap10", "other"]);
    }
}
