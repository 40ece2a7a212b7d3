//! `warren-build build-lxc DEF [TARGET]`: the LXC image: rootfs.tar.* and meta.tar.xz.

use super::common::{self, Common, Packing, Sources, WorkDir};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use warren_builder::build::Outputs;

#[derive(ClapArgs)]
pub struct Args {
    /// The definition file, or - for stdin
    definition: String,
    /// Where the image files go (default: the current directory)
    #[arg(default_value = ".")]
    target: PathBuf,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    sources: Sources,
    #[command(flatten)]
    packing: Packing,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let loaded = common::load(&a.definition, &a.common)?;
    common::enter_build_namespace()?;
    let opts = common::options(&a.common, Some(&a.sources), Some(&a.packing), None, false)?;
    let work = WorkDir::new(a.common.cache_dir.as_deref(), a.common.cleanup)?;
    let r = warren_builder::build::build_image(
        &loaded,
        &work.path,
        &a.target,
        Outputs {
            lxc: true,
            incus: false,
        },
        &opts,
    );
    common::finish_sources(&a.sources);
    r?.print(Some(&a.target));
    Ok(())
}
