//! `warren-lxc mount` (warren's own): add a bind mount to a running container, or remove one,
//! without restarting it (what warrend does when a disk device is added to a running instance).

use anyhow::{anyhow, Result};
use std::path::PathBuf;

use crate::common::{Common, Container};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// The host path to bind (omit with --remove)
    #[arg(long, value_name = "PATH")]
    pub source: Option<PathBuf>,
    /// Where it goes in the container
    #[arg(long, value_name = "PATH")]
    pub target: PathBuf,
    #[arg(long)]
    pub readonly: bool,
    /// Show the source's files with the container's ids (an idmapped mount)
    #[arg(long)]
    pub idmap: bool,
    /// The mounts below the source too (an rbind)
    #[arg(long)]
    pub recursive: bool,
    /// Owner (host ids) of a mount point made for it: UID:GID
    #[arg(long, value_name = "UID:GID")]
    pub owner: Option<String>,
    /// Remove the mount at --target instead
    #[arg(long, conflicts_with = "source")]
    pub remove: bool,
}

pub fn run(args: Args) -> Result<i32> {
    let c = Container::locate(&args.common, None, true)?;
    let info = c
        .info()
        .ok_or_else(|| anyhow!("{} is not running", c.name))?;
    if !args.target.is_absolute() || args.target.components().any(|p| p.as_os_str() == "..") {
        return Err(anyhow!("--target must be an absolute path without \"..\""));
    }
    if args.remove {
        warren_runtime::inject::unmount(info.pid, &args.target).map_err(|e| anyhow!(e))?;
        return Ok(0);
    }
    let source = args
        .source
        .ok_or_else(|| anyhow!("--source is needed (or --remove)"))?;
    let owner = match &args.owner {
        Some(o) => {
            let (u, g) = o
                .split_once(':')
                .ok_or_else(|| anyhow!("--owner UID:GID"))?;
            Some((u.parse()?, g.parse()?))
        }
        None => None,
    };
    warren_runtime::inject::bind(
        info.pid,
        &source,
        &args.target,
        args.readonly,
        args.idmap,
        args.recursive,
        owner,
    )
    .map_err(|e| anyhow!(e))?;
    Ok(0)
}
