//! `lxc-destroy`: remove a container's directory (config and rootfs); `-f` stops it first.

use anyhow::{anyhow, Context, Result};

use crate::common::{Base, Container};
use warren_runtime::proto::{self, Request};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub base: Base,
    /// Stop the container first if it is running
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Destroy its snapshots too
    #[arg(short = 's', long = "snapshots")]
    pub snapshots: bool,
    /// Container name (instead of -n)
    #[arg(value_name = "NAME", conflicts_with = "name")]
    pub positional: Option<String>,
}

pub fn run(args: Args) -> Result<i32> {
    let common = args.base.to_common();
    let c = Container::locate(&common, args.positional.as_ref(), true)?;
    if c.is_running() {
        if !args.force {
            return Err(anyhow!("{} is running; stop it first or use -f", c.name));
        }
        if let Some(mut s) = proto::connect(&c.lxcpath, &c.name)? {
            proto::send_request(
                &mut s,
                &Request::Stop {
                    timeout: 0,
                    kill: true,
                },
            )?;
            let _ = proto::read_response(&mut s);
            proto::wait_closed(&mut s)?;
        }
    }
    let snaps = c.dir().join("snaps");
    if snaps.is_dir()
        && !args.snapshots
        && std::fs::read_dir(&snaps)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    {
        return Err(anyhow!(
            "{} has snapshots; destroy them too with -s",
            c.name
        ));
    }
    let spec = c.spec(true).ok();
    if let Some(spec) = &spec {
        let env = warren_runtime::hooks::hook_env(spec, None);
        warren_runtime::hooks::run_all(spec, warren_runtime::spec::HookKind::Destroy, &env)
            .map_err(|e| anyhow!("{e}"))?;
    }
    // a rootfs outside the container dir (lxc.rootfs.path elsewhere) is the user's: leave it
    match spec
        .as_ref()
        .filter(|s| crate::user::is_regular_user() && !s.idmaps.is_empty())
    {
        // a regular user's rootfs belongs to the container's mapped ids
        Some(spec) => crate::user::remove_tree(&spec.idmaps, &c.dir())?,
        None => std::fs::remove_dir_all(c.dir())
            .with_context(|| format!("remove {}", c.dir().display()))?,
    }
    if !args.base.quiet {
        eprintln!("Destroyed container {}", c.name);
    }
    Ok(0)
}
