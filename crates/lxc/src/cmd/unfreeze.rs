//! `lxc-unfreeze`: thaw a frozen container.

use anyhow::Result;

use crate::common::{Common, Container};
use warren_runtime::proto::Request;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Container name (instead of -n)
    #[arg(value_name = "NAME", conflicts_with = "name")]
    pub positional: Option<String>,
}

pub fn run(args: Args) -> Result<i32> {
    let c = Container::locate(&args.common, args.positional.as_ref(), true)?;
    super::freeze::send(&c, Request::Unfreeze)
}
