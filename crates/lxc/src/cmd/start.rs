//! `lxc-start`: start a container in the background (or in the foreground with -F), and return
//! once it is RUNNING or has failed, with the reason.

use anyhow::{anyhow, Result};

use crate::common::{init_log, Common, Container};
use warren_runtime::monitor::{self, MonitorOptions, StartError};
use warren_runtime::start::{MonitorLaunch, SpawnedMonitor};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Run in the foreground, the console attached to this terminal
    #[arg(short = 'F', long = "foreground")]
    pub foreground: bool,
    /// Run in the background (the default)
    #[arg(short = 'd', long = "daemon")]
    pub daemon: bool,
    /// Write the monitor's pid to FILE
    #[arg(short = 'p', long = "pidfile", value_name = "FILE")]
    pub pidfile: Option<std::path::PathBuf>,
    /// Override a config key for this start (KEY=VALUE)
    #[arg(short = 's', long = "define", value_name = "KEY=VALUE")]
    pub define: Vec<String>,
    /// Container name (instead of -n)
    #[arg(value_name = "NAME", conflicts_with = "name")]
    pub positional: Option<String>,
    /// Command to run instead of init
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn run(args: Args) -> Result<i32> {
    let c = Container::locate(&args.common, args.positional.as_ref(), true)?;
    init_log(&args.common, &c.name)?;
    warren_runtime::debug!("lxc-start {}", c.name);
    if c.is_running() {
        return Err(anyhow!("{} is already running", c.name));
    }
    // the monitor's exec runs while the config is read (an error below dismisses it)
    let early_monitor = if args.foreground {
        None
    } else {
        let exe = monitor_binary()?;
        warren_runtime::debug!("spawning monitor {}", exe.display());
        Some(SpawnedMonitor::spawn(&exe, &c.lxcpath, &c.name).map_err(start_error)?)
    };
    let mut cfg = c.load_config()?;
    for def in &args.define {
        let (k, v) = def
            .split_once('=')
            .ok_or_else(|| anyhow!("-s {def}: expected KEY=VALUE"))?;
        cfg.set(k.trim(), v.trim())
            .map_err(|e| anyhow!("-s {def}: {e}"))?;
    }
    if !args.common.quiet {
        for w in &cfg.warnings {
            eprintln!("warning: {w}");
        }
    }
    let mut spec =
        warren_lxc_config::to_spec(&cfg, &c.name, &c.lxcpath).map_err(|e| anyhow!("{e}"))?;
    crate::common::prepare_spec(&c, &mut spec)?;
    if !spec.rootfs.path.is_dir() {
        return Err(anyhow!(
            "the rootfs of {} is missing: {} is not a directory (lxc.rootfs.path in {})",
            c.name,
            spec.rootfs.path.display(),
            c.config_path.display()
        ));
    }
    if !args.command.is_empty() {
        spec.init.cmd = args.command.clone();
    }
    if !args.common.quiet {
        for key in &spec.unenforced {
            eprintln!("warning: {key} is set but not enforced by this version of warren");
        }
    }
    let Some(spawned) = early_monitor else {
        let code = monitor::run(
            spec,
            MonitorOptions {
                foreground: true,
                execute: false,
            },
            None,
        )
        .map_err(start_error)?;
        return Ok(code);
    };
    let launch = MonitorLaunch {
        spec,
        log_file: args
            .common
            .logfile
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or(p.clone())),
        log_level: args.common.logpriority.clone(),
    };
    spawned.launch(&launch).map_err(start_error)?;
    if let Some(pidfile) = &args.pidfile {
        if let Some(info) = c.info() {
            std::fs::write(pidfile, format!("{}\n", info.monitor_pid))
                .map_err(|e| anyhow!("write pid file {}: {e}", pidfile.display()))?;
        }
    }
    Ok(0)
}

fn start_error(e: StartError) -> anyhow::Error {
    match e {
        StartError::AlreadyRunning(n) => anyhow!("{n} is already running"),
        other => anyhow!("the container failed to start: {other}"),
    }
}

/// The monitor to spawn: `warren-monitor` beside this binary (small, so an idle monitor stays small),
/// else this binary itself, which answers to the monitor's argv[0] too.
fn monitor_binary() -> Result<std::path::PathBuf> {
    let me = std::env::current_exe().map_err(|e| anyhow!("find warren-lxc's own binary: {e}"))?;
    if let Some(dir) = me.parent() {
        let mon = dir.join("warren-monitor");
        if mon.is_file() {
            return Ok(mon);
        }
    }
    Ok(me)
}
