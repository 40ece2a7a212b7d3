//! `warren`: the client, for now `warren admin init` (`--minimal`, `--preseed`, or questions),
//! talking to warrend over its unix socket.
#![forbid(unsafe_code)]

mod admin_init;
mod client;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "warren",
    version,
    about = "The warren client (more with the next issue)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Administration
    Admin {
        #[command(subcommand)]
        command: Admin,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Set up a new warrend: a storage pool, a managed bridge, and the default profile's root
    /// disk and eth0 nic on them; asks unless --minimal or --preseed
    Init {
        /// Take the defaults without asking: a "default" dir pool and the bridge warrenbr0
        #[arg(long, conflicts_with = "preseed")]
        minimal: bool,
        /// With --minimal: the bridge's name, or "none" for no network
        #[arg(long, value_name = "NAME", default_value = admin_init::DEFAULT_BRIDGE, requires = "minimal")]
        network: String,
        /// Read Incus's preseed YAML (storage_pools, networks, profiles) from standard input
        #[arg(long)]
        preseed: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Admin {
            command:
                Admin::Init {
                    minimal,
                    network,
                    preseed,
                },
        } => {
            if preseed {
                admin_init::preseed()
            } else if minimal {
                admin_init::minimal(&network)
            } else {
                admin_init::interactive()
            }
        }
    };
    if let Err(e) = r {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}
