//! `lxc-device`: give a running container a host device node or network interface, or take it
//! back. A node is bound from the host at the same path (or the one named), and the container's
//! device policy lets it open it; an interface moves into the container's network namespace
//! (renamed when asked) and, on `del`, back to the caller's.

use anyhow::{anyhow, bail, Context, Result};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::common::{Common, Container};
use warren_runtime::proto::Request;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  lxc-device -n c1 add /dev/ttyUSB0\n  lxc-device -n c1 add /dev/video0 /dev/video1\n  lxc-device -n c1 add veth-x eth1\n  lxc-device -n c1 del eth1"
)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// add or del
    #[arg(value_parser = ["add", "del"])]
    pub action: String,
    /// A device node path (/dev/...) or a network interface name
    pub device: String,
    /// Its path or name in the container (default: the same)
    pub target: Option<String>,
}

pub fn run(args: Args) -> Result<i32> {
    let c = Container::locate(&args.common, None, true)?;
    let info = c
        .info()
        .ok_or_else(|| anyhow!("{} is not running", c.name))?;
    let target = args.target.as_deref().unwrap_or(&args.device);
    let add = args.action == "add";
    if args.device.starts_with('/') {
        node(&c, info.pid, &args.device, target, add)
    } else if add {
        let mut nl = warren_net::Netlink::open()?;
        let index = nl
            .link_index(&args.device)
            .with_context(|| format!("no network interface {} on the host", args.device))?;
        let netns = std::fs::File::open(format!("/proc/{}/ns/net", info.pid))
            .context("the container's network namespace")?;
        nl.move_to_ns_named(index, netns.as_raw_fd(), target)
            .with_context(|| format!("move {} into {} as {target}", args.device, c.name))?;
        Ok(0)
    } else {
        // from inside the container's network namespace, back to ours
        let host = std::fs::File::open("/proc/self/ns/net").context("our network namespace")?;
        let netns = std::fs::File::open(format!("/proc/{}/ns/net", info.pid))
            .context("the container's network namespace")?;
        nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
            .context("enter the container's network namespace")?;
        let mut nl = warren_net::Netlink::open()?;
        let index = nl
            .link_index(&args.device)
            .with_context(|| format!("no network interface {} in {}", args.device, c.name))?;
        nl.move_to_ns_named(index, host.as_raw_fd(), target)
            .with_context(|| format!("move {} back to the host", args.device))?;
        Ok(0)
    }
}

/// A device node: allowed (or denied) by the container's device policy, bound at `target` (or
/// unbound and its mount point removed).
fn node(c: &Container, pid: i32, device: &str, target: &str, add: bool) -> Result<i32> {
    if !target.starts_with('/') || target.split('/').any(|p| p == "..") {
        bail!("{target}: the path in the container must be absolute, without \"..\"");
    }
    let md = std::fs::metadata(device).with_context(|| device.to_string())?;
    let kind = if md.file_type().is_char_device() {
        'c'
    } else if md.file_type().is_block_device() {
        'b'
    } else {
        bail!("{device} is not a device node");
    };
    let rdev = md.rdev();
    let rule = format!(
        "{kind} {}:{} rwm",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    );
    let key = if add { "devices.allow" } else { "devices.deny" };
    let set = |key: &str| {
        crate::cmd::freeze::send(
            c,
            Request::Cgroup {
                key: key.to_string(),
                value: Some(rule.clone()),
            },
        )
    };
    if add {
        set(key)?;
        if let Err(e) = warren_runtime::inject::bind(
            pid,
            Path::new(device),
            Path::new(target),
            false,
            false,
            false,
            None,
        ) {
            let _ = set("devices.deny");
            bail!("{e}");
        }
    } else {
        warren_runtime::inject::unmount(pid, Path::new(target)).map_err(|e| anyhow!(e))?;
        // the empty file the bind was made on (we are in the container's mount namespace now)
        let placeholder = Path::new(target);
        if std::fs::symlink_metadata(placeholder).is_ok_and(|m| m.is_file() && m.len() == 0) {
            let _ = std::fs::remove_file(placeholder);
        }
        set(key)?;
    }
    Ok(0)
}
