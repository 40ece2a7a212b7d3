//! `lxc-copy` (being written).

use crate::common::Common;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
}

pub fn run(_args: Args) -> anyhow::Result<i32> {
    anyhow::bail!("copy is not available yet")
}
