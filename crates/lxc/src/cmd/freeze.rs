//! `lxc-freeze`: freeze every process of a running container (cgroup freezer).

use anyhow::{anyhow, Result};

use crate::common::{Common, Container};
use warren_runtime::proto::{self, Request};

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
    send(&c, Request::Freeze)
}

/// Send a one-shot request and turn a refusal into an error line.
pub fn send(c: &Container, req: Request) -> Result<i32> {
    match proto::call(&c.lxcpath, &c.name, &req)? {
        None => Err(anyhow!("{} is not running", c.name)),
        Some((resp, _)) if !resp.ok => {
            Err(anyhow!("{}: {}", c.name, resp.error.unwrap_or_default()))
        }
        Some(_) => Ok(0),
    }
}
