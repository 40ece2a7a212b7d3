//! `lxc-cgroup`: read or set a cgroup value of a running container, in the hierarchy that holds
//! the key's controller here (v1, or cgroup2). Device rules go where the container's device
//! policy is enforced, the cgroup2 device program included.

use anyhow::{anyhow, Result};

use crate::common::{Common, Container};
use warren_runtime::proto::{self, Request};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  lxc-cgroup -n c1 memory.max\n  lxc-cgroup -n c1 memory.max 256M\n  lxc-cgroup -n c1 devices.allow 'c 10:200 rwm'"
)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// The cgroup file: CONTROLLER.FILE (memory.max, cpu.weight, memory.limit_in_bytes, ...)
    #[arg(value_name = "KEY")]
    pub key: String,
    /// The value to write (omit to read)
    #[arg(value_name = "VALUE")]
    pub value: Option<String>,
}

pub fn run(args: Args) -> Result<i32> {
    let c = Container::locate(&args.common, None, true)?;
    let req = Request::Cgroup {
        key: args.key.clone(),
        value: args.value.clone(),
    };
    match proto::call(&c.lxcpath, &c.name, &req)? {
        None => Err(anyhow!("{} is not running", c.name)),
        Some((resp, _)) if !resp.ok => {
            Err(anyhow!("{}: {}", c.name, resp.error.unwrap_or_default()))
        }
        Some((resp, _)) => {
            if let Some(data) = resp.data {
                println!("{data}");
            }
            Ok(0)
        }
    }
}
