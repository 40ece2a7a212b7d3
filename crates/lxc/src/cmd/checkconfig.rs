//! `lxc-checkconfig`: report what the kernel and host offer containers (namespaces, cgroups,
//! capabilities, filesystems), as warren's runtime checks it.

use crate::common::Common;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
}

pub fn run(_args: Args) -> anyhow::Result<i32> {
    print!(
        "{}",
        warren_runtime::checkconfig::render(&warren_runtime::checkconfig::check())
    );
    // LXC's lxc-checkconfig exits 0 even when options are missing: the report is the answer
    Ok(0)
}
