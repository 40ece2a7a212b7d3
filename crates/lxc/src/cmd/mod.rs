//! The subcommands of warren-lxc, one file each; `lxc-NAME` links run `warren-lxc NAME`.

use clap::{Args as _, FromArgMatches as _, Parser, Subcommand};
use std::ffi::OsString;

pub mod attach;
pub mod autostart;
pub mod cgroup;
pub mod checkconfig;
pub mod config;
pub mod console;
pub mod copy;
pub mod create;
pub mod destroy;
pub mod device;
pub mod execute;
pub mod freeze;
pub mod info;
pub mod install_links;
pub mod ls;
pub mod mount;
pub mod net;
mod quick;
pub mod shift;
pub mod snapshot;
pub mod start;
pub mod stop;
pub mod unfreeze;
pub mod wait;

/// Linux system containers, LXC-compatible (warren).
#[derive(Parser, Debug)]
#[command(name = "warren-lxc", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run a command in a running container
    Attach(attach::Args),
    /// Start, stop or list the containers marked lxc.start.auto
    Autostart(autostart::Args),
    /// Read or set a cgroup value of a running container
    Cgroup(cgroup::Args),
    /// Check the kernel and host for what containers need
    Checkconfig(checkconfig::Args),
    /// Print warren-lxc's configuration values (lxc.lxcpath, ...)
    Config(config::Args),
    /// Attach to a container's console or one of its ttys
    Console(console::Args),
    /// Copy a container
    Copy(copy::Args),
    /// Create a container from a template
    Create(create::Args),
    /// Destroy a container
    Destroy(destroy::Args),
    /// Add a host device node or network interface to a running container, or take it back
    Device(device::Args),
    /// Run one command in a fresh container with a minimal init
    Execute(execute::Args),
    /// Freeze all the container's processes
    Freeze(freeze::Args),
    /// Show a container's state and resource use
    Info(info::Args),
    /// Make lxc-* links to this binary in DIR
    InstallLinks(install_links::Args),
    /// List containers
    Ls(ls::Args),
    /// Set up or tear down the lxcbr0 bridge with DHCP, DNS and NAT (LXC's lxc-net)
    Net(net::Args),
    /// (internal) keep a bridge's dnsmasq running: started by `net start`
    #[command(hide = true)]
    NetSupervise(net::SuperviseArgs),
    /// Add a bind mount to a running container, or remove one (warren's own)
    Mount(mount::Args),
    /// Shift an unprivileged container's rootfs ownership through its id map (filesystems without idmapped mounts)
    Shift(shift::Args),
    /// Create, list, restore or destroy snapshots of a container
    Snapshot(snapshot::Args),
    /// Start a container
    Start(start::Args),
    /// Stop a container
    Stop(stop::Args),
    /// Thaw a frozen container
    Unfreeze(unfreeze::Args),
    /// Wait for a container to reach a state
    Wait(wait::Args),
}

/// Parse the command line. Only the clap command of the subcommand argv[1] names is built: the
/// whole tree of two dozen subcommands costs every short-lived invocation (start, wait, stop...)
/// a few hundred microseconds of allocations and page faults. Help, `--version` and every parse
/// error go through the whole tree, so what clap prints stays the same.
pub fn parse(args: &[OsString]) -> Result<Cli, clap::Error> {
    // start, wait and stop as scripts write them: no clap at all
    if let Some(cli) = quick::parse(args) {
        return Ok(cli);
    }
    if let Some(sub) = args
        .get(1)
        .and_then(|a| a.to_str())
        .and_then(one_subcommand)
    {
        let only = clap::Command::new("warren-lxc").subcommand(sub);
        if let Ok(cli) = only
            .try_get_matches_from(args)
            .and_then(|m| Cli::from_arg_matches(&m))
        {
            return Ok(cli);
        }
    }
    Cli::try_parse_from(args)
}

/// The clap command of one subcommand, by name (None for anything else, e.g. `--help`).
fn one_subcommand(name: &str) -> Option<clap::Command> {
    macro_rules! table {
        ($($sub:literal => $args:ty),* $(,)?) => {
            match name {
                $($sub => Some(<$args>::augment_args(clap::Command::new($sub))),)*
                _ => None,
            }
        };
    }
    table! {
        "attach" => attach::Args,
        "autostart" => autostart::Args,
        "cgroup" => cgroup::Args,
        "checkconfig" => checkconfig::Args,
        "config" => config::Args,
        "console" => console::Args,
        "copy" => copy::Args,
        "create" => create::Args,
        "destroy" => destroy::Args,
        "device" => device::Args,
        "execute" => execute::Args,
        "freeze" => freeze::Args,
        "info" => info::Args,
        "install-links" => install_links::Args,
        "ls" => ls::Args,
        "net" => net::Args,
        "net-supervise" => net::SuperviseArgs,
        "mount" => mount::Args,
        "shift" => shift::Args,
        "snapshot" => snapshot::Args,
        "start" => start::Args,
        "stop" => stop::Args,
        "unfreeze" => unfreeze::Args,
        "wait" => wait::Args,
    }
}

/// Run the parsed command; the result is the process's exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    // a regular user's containers live in their own lxcpath, unprivileged (see user.rs); the
    // commands below don't handle rootfs owned by mapped ids yet
    let root_only = match &cli.cmd {
        Cmd::Autostart(_) => Some("autostart"),
        Cmd::Copy(_) => Some("copy"),
        Cmd::Net(_) | Cmd::NetSupervise(_) => Some("net"),
        Cmd::Shift(_) => Some("shift"),
        Cmd::Mount(_) => Some("mount"),
        Cmd::Device(_) => Some("device"),
        Cmd::Snapshot(_) => Some("snapshot"),
        _ => None,
    };
    if let Some(name) = root_only {
        if crate::user::is_regular_user() {
            anyhow::bail!(
                "{name} needs root for now (regular users can create, start, attach, console, stop, destroy, ls, info, wait, freeze and execute); run it with sudo"
            );
        }
    }
    match cli.cmd {
        Cmd::Attach(a) => attach::run(a),
        Cmd::Autostart(a) => autostart::run(a),
        Cmd::Cgroup(a) => cgroup::run(a),
        Cmd::Checkconfig(a) => checkconfig::run(a),
        Cmd::Config(a) => config::run(a),
        Cmd::Console(a) => console::run(a),
        Cmd::Copy(a) => copy::run(a),
        Cmd::Create(a) => create::run(a),
        Cmd::Destroy(a) => destroy::run(a),
        Cmd::Device(a) => device::run(a),
        Cmd::Execute(a) => execute::run(a),
        Cmd::Freeze(a) => freeze::run(a),
        Cmd::Info(a) => info::run(a),
        Cmd::InstallLinks(a) => install_links::run(a),
        Cmd::Ls(a) => ls::run(a),
        Cmd::Net(a) => net::run(a),
        Cmd::NetSupervise(a) => net::supervise(a),
        Cmd::Shift(a) => shift::run(a),
        Cmd::Mount(a) => mount::run(a),
        Cmd::Snapshot(a) => snapshot::run(a),
        Cmd::Start(a) => start::run(a),
        Cmd::Stop(a) => stop::run(a),
        Cmd::Unfreeze(a) => unfreeze::run(a),
        Cmd::Wait(a) => wait::run(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_subcommand_parses_without_the_whole_tree() {
        for sub in Cli::command().get_subcommands() {
            assert!(
                one_subcommand(sub.get_name()).is_some(),
                "{} is missing from one_subcommand's table",
                sub.get_name()
            );
        }
    }

    #[test]
    fn the_short_parse_agrees_with_the_whole_tree() {
        let argvs: &[&[&str]] = &[
            &["warren-lxc", "start", "-n", "c1", "-P", "/tmp/x", "-q"],
            &[
                "warren-lxc",
                "wait",
                "-n",
                "c1",
                "-s",
                "RUNNING",
                "-t",
                "-1",
            ],
            &["warren-lxc", "stop", "c1", "-k"],
            &[
                "warren-lxc",
                "attach",
                "-n",
                "c1",
                "--clear-env",
                "--",
                "ls",
                "-l",
            ],
            &["warren-lxc", "create", "-n", "c1", "-t", "busybox"],
        ];
        for argv in argvs {
            let args: Vec<OsString> = argv.iter().map(OsString::from).collect();
            let whole = Cli::try_parse_from(&args).expect("parses");
            let short = parse(&args).expect("parses");
            assert_eq!(format!("{whole:?}"), format!("{short:?}"), "{argv:?}");
        }
        // what the short parse refuses goes through the whole tree, with clap's usual message
        let bad: Vec<OsString> = ["warren-lxc", "start", "--no-such-flag"]
            .iter()
            .map(OsString::from)
            .collect();
        let err = parse(&bad).expect_err("refused").to_string();
        assert!(err.contains("--no-such-flag"), "{err}");
        assert!(err.contains("Usage: warren-lxc start"), "{err}");
    }
}
