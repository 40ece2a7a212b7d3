//! `warren-lxc install-links DIR`: make `lxc-*` links to this binary, never replacing a file.

use anyhow::{Context, Result};
use std::path::PathBuf;

/// The tools warren answers as.
pub const TOOLS: [&str; 19] = [
    "attach",
    "autostart",
    "cgroup",
    "checkconfig",
    "config",
    "console",
    "copy",
    "create",
    "destroy",
    "device",
    "execute",
    "freeze",
    "info",
    "ls",
    "snapshot",
    "start",
    "stop",
    "unfreeze",
    "wait",
];

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to put the links in (e.g. /usr/local/bin)
    pub dir: PathBuf,
}

pub fn run(args: Args) -> Result<i32> {
    let exe = std::env::current_exe().context("find warren-lxc's own binary")?;
    std::fs::create_dir_all(&args.dir).with_context(|| format!("create {}", args.dir.display()))?;
    for t in TOOLS {
        let link = args.dir.join(format!("lxc-{t}"));
        if link.symlink_metadata().is_ok() {
            let ours = std::fs::read_link(&link).map(|p| p == exe).unwrap_or(false);
            if !ours {
                eprintln!("skipping {}: it exists and is not warren's", link.display());
            }
            continue;
        }
        std::os::unix::fs::symlink(&exe, &link)
            .with_context(|| format!("link {}", link.display()))?;
    }
    Ok(0)
}
