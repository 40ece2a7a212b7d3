//! `lxc-wait`: block until a container reaches one of the states given with -s ("RUNNING|FROZEN").

use anyhow::{anyhow, bail, Result};
use std::time::{Duration, Instant};

use crate::common::{Common, Container};
use warren_runtime::proto::{self, Request, State};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// States to wait for, separated by '|' (STOPPED, STARTING, RUNNING, STOPPING, ABORTING, FREEZING, FROZEN, THAWED)
    #[arg(short = 's', long = "state", value_name = "STATES")]
    pub state: String,
    /// Give up after this many seconds (-1: wait forever); exit status 1 on timeout
    #[arg(short = 't', long = "timeout", default_value_t = -1, allow_negative_numbers = true)]
    pub timeout: i64,
    /// Container name (instead of -n)
    #[arg(value_name = "NAME", conflicts_with = "name")]
    pub positional: Option<String>,
}

pub fn run(args: Args) -> Result<i32> {
    let c = Container::locate(&args.common, args.positional.as_ref(), false)?;
    let mut states = Vec::new();
    for s in args
        .state
        .split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        states.push(State::parse(s).ok_or_else(|| anyhow!("invalid state \"{s}\" for -s"))?);
    }
    if states.is_empty() {
        bail!("-s needs at least one state");
    }
    let deadline =
        (args.timeout >= 0).then(|| Instant::now() + Duration::from_secs(args.timeout as u64));
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            return Ok(1);
        }
        match proto::connect(&c.lxcpath, &c.name)? {
            None => {
                if states.contains(&State::Stopped) {
                    return Ok(0);
                }
                // not running yet: poll until a monitor appears
                std::thread::sleep(Duration::from_millis(20));
            }
            Some(mut stream) => {
                stream.set_read_timeout(left.map(|d| d.max(Duration::from_millis(1))))?;
                proto::send_request(
                    &mut stream,
                    &Request::Wait {
                        states: states.clone(),
                    },
                )?;
                match proto::read_response(&mut stream) {
                    Ok((resp, _)) if resp.ok => return Ok(0),
                    Ok(_) => return Ok(1),
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        // the monitor went away: the container stopped
                        if states.contains(&State::Stopped) {
                            return Ok(0);
                        }
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        return Ok(1)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}
