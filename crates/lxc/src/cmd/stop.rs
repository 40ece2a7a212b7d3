//! `lxc-stop`: a clean stop (lxc.signal.halt, then SIGKILL after -t seconds), `-k` to kill at once,
//! `-r` to reboot. Returns once the container is STOPPED (or rebooting).

use anyhow::{anyhow, Result};

use crate::common::{Common, Container};
use warren_runtime::proto::{self, Request};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Kill the container at once instead of a clean stop
    #[arg(short = 'k', long = "kill")]
    pub kill: bool,
    /// Reboot the container
    #[arg(short = 'r', long = "reboot")]
    pub reboot: bool,
    /// Seconds to wait for a clean stop before killing (-1: forever)
    #[arg(
        short = 't',
        long = "timeout",
        default_value_t = 60,
        allow_negative_numbers = true
    )]
    pub timeout: i64,
    /// Only request a clean stop; don't kill when the timeout passes
    #[arg(long = "nokill")]
    pub nokill: bool,
    /// Return at once, without waiting for the container to stop
    #[arg(short = 'W', long = "nowait")]
    pub nowait: bool,
    /// Container name (instead of -n)
    #[arg(value_name = "NAME", conflicts_with = "name")]
    pub positional: Option<String>,
}

pub fn run(args: Args) -> Result<i32> {
    let c = Container::locate(&args.common, args.positional.as_ref(), true)?;
    let Some(mut stream) = proto::connect(&c.lxcpath, &c.name)? else {
        return Err(anyhow!("{} is not running", c.name));
    };
    let req = if args.reboot {
        Request::Reboot
    } else {
        let timeout = if args.nokill { -1 } else { args.timeout };
        Request::Stop {
            timeout,
            kill: args.kill,
        }
    };
    proto::send_request(&mut stream, &req)?;
    let (resp, _) = proto::read_response(&mut stream)?;
    if !resp.ok {
        return Err(anyhow!("{}: {}", c.name, resp.error.unwrap_or_default()));
    }
    if args.reboot || args.nowait {
        return Ok(0);
    }
    if args.nokill && args.timeout >= 0 {
        // a clean stop only: give up waiting (the container keeps running) after -t seconds
        stream.set_read_timeout(Some(std::time::Duration::from_secs(
            args.timeout.max(1) as u64
        )))?;
        return match proto::wait_closed(&mut stream) {
            Ok(()) => Ok(0),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(anyhow!(
                    "{} did not stop within {} s; it was asked to, and is not killed (--nokill)",
                    c.name,
                    args.timeout
                ))
            }
            Err(e) => Err(e.into()),
        };
    }
    proto::wait_closed(&mut stream)?;
    Ok(0)
}
