//! `warren-build build-lxc DEF [TARGET]`: the LXC image: rootfs.tar.* and meta.tar.xz.

use super::common::{self, Common, Packing, Sources};
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
    let outputs = Outputs {
        lxc: true,
        incus: false,
    };
    common::build_image(
        &a.definition,
        &a.target,
        &a.common,
        &a.sources,
        &a.packing,
        None,
        outputs,
    )
}
