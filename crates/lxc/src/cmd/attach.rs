//! `lxc-attach`: run a command (default: the user's shell) inside a running container, with a pty
//! when stdin is a terminal; its exit status is attach's.

use anyhow::{anyhow, Result};
use std::path::PathBuf;

use crate::common::{Common, Container};
use warren_runtime::attach::{attach, AttachError, AttachOptions, PtyMode};
use warren_runtime::spec::NsKind;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Clear all environment variables before attaching (keeping TERM and --keep-var ones)
    #[arg(long = "clear-env", conflicts_with = "keep_env")]
    pub clear_env: bool,
    /// Keep the current environment (the default)
    #[arg(long = "keep-env")]
    pub keep_env: bool,
    /// Keep this variable with --clear-env (repeatable)
    #[arg(long = "keep-var", value_name = "NAME")]
    pub keep_var: Vec<String>,
    /// Set an environment variable (VAR=VALUE, repeatable)
    #[arg(short = 'v', long = "set-var", value_name = "VAR=VALUE")]
    pub set_var: Vec<String>,
    /// Run as this user id inside the container
    #[arg(short = 'u', long = "uid", value_name = "UID")]
    pub uid: Option<u32>,
    /// Run with this group id inside the container
    #[arg(short = 'g', long = "gid", value_name = "GID")]
    pub gid: Option<u32>,
    /// Working directory inside the container (default: this directory if the container has it, else /)
    #[arg(long = "cwd", value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Only enter these namespaces, '|' separated: MOUNT, PID, UTSNAME, IPC, USER, NETWORK, CGROUP
    #[arg(short = 's', long = "namespaces", value_name = "NAMESPACES")]
    pub namespaces: Option<String>,
    /// Don't join the container's cgroup (LXC's -e keeps privileges; cgroup joining is what it skips here)
    #[arg(short = 'e', long = "elevated-privileges")]
    pub elevated: bool,
    /// Never allocate a pty, even when stdin is a terminal
    #[arg(long = "no-pty")]
    pub no_pty: bool,
    /// Container name (instead of -n)
    #[arg(value_name = "NAME", conflicts_with = "name")]
    pub positional: Option<String>,
    /// The command and its arguments (after --)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

fn parse_namespaces(s: &str) -> Result<Vec<NsKind>> {
    s.split('|')
        .map(|t| match t.trim().to_ascii_uppercase().as_str() {
            "MOUNT" | "MNT" => Ok(NsKind::Mount),
            "PID" => Ok(NsKind::Pid),
            "UTSNAME" | "UTS" => Ok(NsKind::Uts),
            "IPC" => Ok(NsKind::Ipc),
            "USER" => Ok(NsKind::User),
            "NETWORK" | "NET" => Ok(NsKind::Net),
            "CGROUP" => Ok(NsKind::Cgroup),
            other => Err(anyhow!("unknown namespace \"{other}\" for -s")),
        })
        .collect()
}

pub fn run(args: Args) -> Result<i32> {
    let c = Container::locate(&args.common, args.positional.as_ref(), true)?;
    let mut extra_env = Vec::new();
    for kv in &args.set_var {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow!("-v {kv}: expected VAR=VALUE"))?;
        extra_env.push((k.to_string(), v.to_string()));
    }
    let opts = AttachOptions {
        command: args.command.clone(),
        clear_env: args.clear_env,
        keep_vars: args.keep_var.clone(),
        extra_env,
        uid: args.uid,
        gid: args.gid,
        cwd: args.cwd.clone(),
        caller_cwd: std::env::current_dir().ok(),
        pty: if args.no_pty {
            PtyMode::Never
        } else {
            PtyMode::Auto
        },
        namespaces: args
            .namespaces
            .as_deref()
            .map(parse_namespaces)
            .transpose()?,
        skip_cgroup: args.elevated,
    };
    match attach(&c.lxcpath, &c.name, &opts) {
        Ok(code) => Ok(code),
        Err(AttachError::NotRunning(n)) => Err(anyhow!("{n} is not running")),
        Err(e) => Err(anyhow!("{e}")),
    }
}
