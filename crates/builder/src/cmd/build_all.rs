//! `warren-build build-all DEF [TARGET]`: the LXC and Incus images from one build.

use super::common::{self, Common, IncusFlags, Packing, Sources, WorkDir};
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
    #[command(flatten)]
    incus: IncusFlags,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let loaded = common::load(&a.definition, &a.common)?;
    common::enter_build_namespace()?;
    let opts = common::options(
        &a.common,
        Some(&a.sources),
        Some(&a.packing),
        Some(&a.incus),
        false,
    )?;
    let work = WorkDir::new(a.common.cache_dir.as_deref(), a.common.cleanup)?;
    let r = warren_builder::build::build_image(
        &loaded,
        &work.path,
        &a.target,
        Outputs {
            lxc: true,
            incus: true,
        },
        &opts,
    );
    common::finish_sources(&a.sources);
    r?.print(Some(&a.target));
    Ok(())
}
