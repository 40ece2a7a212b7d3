//! `lxc-info`: a container's state, pid, addresses and resource use, with LXC's labels and units.

use anyhow::Result;

use crate::common::{Common, Container};
use crate::status::{human_bytes, status};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Show the state
    #[arg(short = 's', long = "state")]
    pub state: bool,
    /// Show the init pid
    #[arg(short = 'p', long = "pid")]
    pub pid: bool,
    /// Show the IP addresses
    #[arg(short = 'i', long = "ips")]
    pub ips: bool,
    /// Show resource statistics
    #[arg(short = 'S', long = "stats")]
    pub stats: bool,
    /// Raw numbers, and only the value with -s/-p/-i
    #[arg(short = 'H', long = "no-humanize")]
    pub raw: bool,
    /// Show the value of a config key (repeatable)
    #[arg(short = 'c', long = "config", value_name = "KEY")]
    pub config: Vec<String>,
    /// Container name (instead of -n)
    #[arg(value_name = "NAME", conflicts_with = "name")]
    pub positional: Option<String>,
}

fn line(label: &str, value: impl std::fmt::Display) {
    println!("{:<16}{}", format!("{label}:"), value);
}

pub fn run(args: Args) -> Result<i32> {
    let c = Container::locate(&args.common, args.positional.as_ref(), true)?;
    if !args.config.is_empty() {
        let cfg = c.load_config()?;
        for key in &args.config {
            match cfg.get(key) {
                Some(v) => println!("{key} = {v}"),
                None => println!("{key} ="),
            }
        }
        return Ok(0);
    }
    let st = status(&c);
    let running = st.pid.is_some();
    let selective = args.state || args.pid || args.ips || args.stats;
    let show = |flag: bool| !selective || flag;
    if !selective {
        line("Name", &st.name);
    }
    if show(args.state) {
        if args.raw && selective {
            println!("{}", st.state);
        } else {
            line("State", st.state);
        }
    }
    if !running {
        return Ok(0);
    }
    if show(args.pid) {
        if let Some(pid) = st.pid {
            if args.raw && selective {
                println!("{pid}");
            } else {
                line("PID", pid);
            }
        }
    }
    if show(args.ips) {
        for ip in st.ipv4.iter().chain(st.ipv6.iter()) {
            if args.raw && selective {
                println!("{ip}");
            } else {
                line("IP", ip);
            }
        }
    }
    if show(args.stats) {
        let bytes = |n: u64| {
            if args.raw {
                n.to_string()
            } else {
                human_bytes(n)
            }
        };
        if let Some(ns) = st.cpu_ns {
            if args.raw {
                line("CPU use", ns);
            } else {
                line("CPU use", format!("{:.2} seconds", ns as f64 / 1e9));
            }
        }
        if let Some(b) = st.blkio_bytes {
            line("BlkIO use", bytes(b));
        }
        if let Some(b) = st.memory_bytes {
            line("Memory use", bytes(b));
        }
        if let Some(b) = st.kmem_bytes {
            line("KMem use", bytes(b));
        }
        for iface in st.interfaces.iter().filter(|i| i.name != "lo") {
            line("Link", &iface.name);
            line(" TX bytes", bytes(iface.tx_bytes));
            line(" RX bytes", bytes(iface.rx_bytes));
            line(" Total bytes", bytes(iface.tx_bytes + iface.rx_bytes));
        }
    }
    Ok(0)
}
