//! `warren-build pack-incus DEF SOURCE_DIR [TARGET]`: an existing rootfs (build-dir's) packed as
//! a incus image; typed package sets and actions re-run on an overlay, the source stays unchanged.

use super::common::{self, Common, IncusFlags, Packing, WorkDir};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use warren_builder::build::Outputs;

#[derive(ClapArgs)]
pub struct Args {
    /// The definition file, or - for stdin
    definition: String,
    /// The rootfs directory to pack
    source: PathBuf,
    /// Where the image files go (default: the current directory)
    #[arg(default_value = ".")]
    target: PathBuf,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    packing: Packing,
    #[command(flatten)]
    incus: IncusFlags,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let loaded = common::load(&a.definition, &a.common)?;
    if !a.source.is_dir() {
        anyhow::bail!(
            "{}: not a directory (give the rootfs build-dir made)",
            a.source.display()
        );
    }
    common::enter_build_namespace()?;
    let opts = common::options(&a.common, None, Some(&a.packing), Some(&a.incus), false)?;
    let work = WorkDir::new(a.common.cache_dir.as_deref(), a.common.cleanup)?;
    let summary = warren_builder::build::pack_existing(
        &loaded,
        &a.source,
        &work.path,
        &a.target,
        Outputs {
            lxc: false,
            incus: true,
        },
        &opts,
    )?;
    summary.print(Some(&a.target));
    Ok(())
}
