//! `warren-lxc net start|stop|status`: LXC's lxc-net (the lxcbr0 bridge, dnsmasq, NAT), from
//! /etc/default/lxc-net.

use anyhow::{anyhow, Result};
use std::path::PathBuf;

use crate::lxcnet;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// start, stop or status
    #[arg(value_parser = ["start", "stop", "status"])]
    pub action: String,
    /// The lxc-net settings (USE_LXC_BRIDGE, LXC_BRIDGE, LXC_ADDR, LXC_NETWORK, LXC_DHCP_RANGE, ...)
    #[arg(long, value_name = "FILE", default_value = "/etc/default/lxc-net")]
    pub config: PathBuf,
    /// Where the state of started bridges is kept
    #[arg(long, value_name = "DIR", default_value = "/run/warren/lxc-net")]
    pub run_dir: PathBuf,
    /// Where dnsmasq keeps its leases (dnsmasq.<bridge>.leases)
    #[arg(long, value_name = "DIR", default_value = "/var/lib/misc")]
    pub leases_dir: PathBuf,
    /// Answer DNS for local names only: don't forward queries to the host's resolvers
    #[arg(long)]
    pub no_upstream: bool,
    /// Route the bridge's subnet without masquerading it (warren's addition; warrend's
    /// ipv4.nat=false)
    #[arg(long)]
    pub no_nat: bool,
}

pub fn run(args: Args) -> Result<i32> {
    // a missing file means LXC's defaults, as lxc-net does
    let text = match std::fs::read_to_string(&args.config) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(anyhow!("read {}: {e}", args.config.display())),
    };
    let mut cfg = lxcnet::parse_config(&text, &args.config)?;
    cfg.nat = !args.no_nat;
    match args.action.as_str() {
        "start" => {
            if !cfg.use_bridge {
                println!(
                    "USE_LXC_BRIDGE is false in {}: nothing to do",
                    args.config.display()
                );
                return Ok(0);
            }
            let s = lxcnet::start(&cfg, &args.run_dir, &args.leases_dir, !args.no_upstream)?;
            println!(
                "{} up: {} (DHCP {}, NAT for {} in nftables table {})",
                s.bridge, s.address, cfg.dhcp_range, cfg.network, s.nft_table
            );
            Ok(0)
        }
        "stop" => {
            lxcnet::stop(&args.run_dir, &cfg.bridge)?;
            println!("{} down", cfg.bridge);
            Ok(0)
        }
        _ => match lxcnet::load_state(&args.run_dir, &cfg.bridge)? {
            Some(s) => {
                let dns = warren_net::dnsmasq::running_pid(&s.pid_file)
                    .map(|p| format!("dnsmasq pid {p}"))
                    .unwrap_or_else(|| "dnsmasq NOT running".into());
                let sup = std::fs::read_to_string(s.supervisor_pid_file())
                    .map(|p| format!("supervised by pid {}", p.trim()))
                    .unwrap_or_else(|_| "NOT supervised".into());
                let dns = format!("{dns} ({sup})");
                let nat = match warren_net::nft::list_table("ip", &s.nft_table) {
                    Ok(Some(_)) => format!("nftables table {}", s.nft_table),
                    _ => format!("nftables table {} MISSING", s.nft_table),
                };
                println!(
                    "{}: running, {}; {dns}; {nat}; leases {}",
                    s.bridge,
                    s.address,
                    s.leases.display()
                );
                Ok(0)
            }
            None => {
                println!("{}: not started by warren-lxc net", cfg.bridge);
                Ok(3)
            }
        },
    }
}

#[derive(clap::Args, Debug)]
pub struct SuperviseArgs {
    pub pid_file: PathBuf,
    pub program: PathBuf,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn supervise(a: SuperviseArgs) -> Result<i32> {
    lxcnet::supervise(&a.pid_file, &a.program, &a.args)
}
