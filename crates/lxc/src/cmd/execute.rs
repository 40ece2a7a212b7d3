//! `lxc-execute`: run one command in a fresh container under a minimal init (PID 1 reaps and
//! forwards signals), with this terminal's stdio; the command's exit status is execute's.

use anyhow::{anyhow, bail, Result};

use crate::common::{init_log, Common, Container};
use warren_runtime::monitor::{self, MonitorOptions, StartError};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Override a config key for this run (KEY=VALUE)
    #[arg(short = 's', long = "define", value_name = "KEY=VALUE")]
    pub define: Vec<String>,
    /// Container name (instead of -n)
    #[arg(value_name = "NAME", conflicts_with = "name")]
    pub positional: Option<String>,
    /// The command and its arguments (after --)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn run(args: Args) -> Result<i32> {
    if args.command.is_empty() {
        bail!("missing command to execute (lxc-execute -n NAME -- COMMAND)");
    }
    let c = Container::locate(&args.common, args.positional.as_ref(), true)?;
    init_log(&args.common, &c.name)?;
    let mut cfg = c.load_config()?;
    for def in &args.define {
        let (k, v) = def
            .split_once('=')
            .ok_or_else(|| anyhow!("-s {def}: expected KEY=VALUE"))?;
        cfg.set(k.trim(), v.trim())
            .map_err(|e| anyhow!("-s {def}: {e}"))?;
    }
    let mut spec =
        warren_lxc_config::to_spec(&cfg, &c.name, &c.lxcpath).map_err(|e| anyhow!("{e}"))?;
    crate::common::prepare_spec(&c, &mut spec)?;
    if !spec.rootfs.path.is_dir() {
        bail!(
            "the rootfs of {} is missing: {} is not a directory",
            c.name,
            spec.rootfs.path.display()
        );
    }
    spec.init.cmd = args.command.clone();
    match monitor::run(
        spec,
        MonitorOptions {
            foreground: false,
            execute: true,
        },
        None,
    ) {
        Ok(code) => Ok(code),
        Err(StartError::AlreadyRunning(n)) => Err(anyhow!("{n} is already running")),
        Err(e) => Err(anyhow!("the container failed to start: {e}")),
    }
}
