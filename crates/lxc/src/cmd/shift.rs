//! `warren-lxc shift`: shift an unprivileged container's rootfs ownership through its `lxc.idmap`
//! (for filesystems without idmapped mounts, as LXD's fuidshift did), or back with `--reverse`.

use anyhow::{anyhow, bail, Context, Result};

use crate::common::{shift_marker, Common, Container};
use warren_runtime::shift::shift_tree;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Shift back: host ids to the container's own (undo a shift)
    #[arg(short = 'r', long = "reverse")]
    pub reverse: bool,
    /// Container name (instead of -n)
    #[arg(value_name = "NAME", conflicts_with = "name")]
    pub positional: Option<String>,
}

pub fn run(args: Args) -> Result<i32> {
    let c = Container::locate(&args.common, args.positional.as_ref(), true)?;
    if c.is_running() {
        bail!("{} is running; stop it before shifting its rootfs", c.name);
    }
    let spec = c.spec(true)?;
    if spec.idmaps.is_empty() {
        bail!(
            "{} has no lxc.idmap: only an unprivileged container's rootfs can be shifted",
            c.name
        );
    }
    let marker = shift_marker(&c);
    if !args.reverse && marker.exists() {
        bail!(
            "the rootfs of {} is shifted already (undo with --reverse)",
            c.name
        );
    }
    if args.reverse && !marker.exists() {
        bail!("the rootfs of {} is not shifted", c.name);
    }
    let stats =
        shift_tree(&spec.rootfs.path, &spec.idmaps, args.reverse).map_err(|e| anyhow!("{e}"))?;
    if args.reverse {
        std::fs::remove_file(&marker).with_context(|| format!("remove {}", marker.display()))?;
    } else {
        std::fs::write(&marker, crate::common::idmap_text(&spec.idmaps))
            .with_context(|| format!("write {}", marker.display()))?;
    }
    if !args.common.quiet {
        eprintln!(
            "shifted {} entries of {}",
            stats.entries,
            spec.rootfs.path.display()
        );
    }
    Ok(0)
}
