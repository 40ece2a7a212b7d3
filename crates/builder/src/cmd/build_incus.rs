//! `warren-build build-incus DEF [TARGET]`: the Incus image: incus.tar.* and rootfs.squashfs (split) or one tarball (unified).

use super::common::{self, Common, IncusFlags, Packing, Sources};
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
    let outputs = Outputs {
        lxc: false,
        incus: true,
    };
    common::build_image(
        &a.definition,
        &a.target,
        &a.common,
        &a.sources,
        &a.packing,
        Some(&a.incus),
        outputs,
    )
}
