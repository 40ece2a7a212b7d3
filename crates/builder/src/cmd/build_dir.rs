//! `warren-build build-dir DEF TARGET`: the customised rootfs as a directory.

use super::common::{self, Common, Sources};
use clap::Args as ClapArgs;
use std::path::PathBuf;

#[derive(ClapArgs)]
pub struct Args {
    /// The definition file, or - for stdin
    definition: String,
    /// The directory to build the rootfs in
    target: PathBuf,
    /// Also run the post-files actions
    #[arg(long = "with-post-files")]
    with_post_files: bool,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    sources: Sources,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let loaded = common::load(&a.definition, &a.common)?;
    common::enter_build_namespace()?;
    let opts = common::options(&a.common, Some(&a.sources), None, None, a.with_post_files)?;
    let r = warren_builder::build::build_dir(&loaded, &a.target, &opts);
    common::finish_sources(&a.sources);
    r?;
    eprintln!(
        "built {} in {}",
        loaded.def.image.distribution,
        a.target.display()
    );
    Ok(())
}
