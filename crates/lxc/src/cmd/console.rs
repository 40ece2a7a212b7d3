//! `lxc-console`: attach this terminal to a container's console (tty 0) or one of its ttys; the
//! escape `Ctrl-a q` detaches. `--log` prints the console ring buffer instead.

use anyhow::{anyhow, Result};
use std::os::fd::AsFd;

use crate::common::{Common, Container};
use warren_runtime::proto::{self, Request};
use warren_runtime::term::{proxy_with, ProxyEnd};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// The tty to attach to (0 = the console)
    #[arg(short = 't', long = "tty", default_value_t = 0, value_name = "TTYNUM")]
    pub tty: u32,
    /// Escape prefix, as ^X (default ^a); <prefix> q detaches
    #[arg(
        short = 'e',
        long = "escape",
        default_value = "^a",
        value_name = "PREFIX"
    )]
    pub escape: String,
    /// Print what the container wrote to its console (the ring buffer) and exit
    #[arg(long = "log", alias = "show-log")]
    pub log: bool,
    /// With --log: empty the ring buffer after printing it
    #[arg(long = "clear")]
    pub clear: bool,
    /// Container name (instead of -n)
    #[arg(value_name = "NAME", conflicts_with = "name")]
    pub positional: Option<String>,
}

fn escape_byte(s: &str) -> Result<u8> {
    let b = s.as_bytes();
    if b.len() == 2 && b[0] == b'^' && b[1].is_ascii_alphabetic() {
        return Ok(b[1].to_ascii_lowercase() - b'a' + 1);
    }
    Err(anyhow!(
        "invalid escape \"{s}\": use ^ and a letter, like ^a"
    ))
}

pub fn run(args: Args) -> Result<i32> {
    let c = Container::locate(&args.common, args.positional.as_ref(), true)?;
    let esc = escape_byte(&args.escape)?;
    let Some(mut stream) = proto::connect(&c.lxcpath, &c.name)? else {
        return Err(anyhow!("{} is not running", c.name));
    };
    if args.log {
        proto::send_request(&mut stream, &Request::ConsoleLog { clear: args.clear })?;
        let (resp, _) = proto::read_whole_response(&stream)?;
        if !resp.ok {
            return Err(anyhow!("{}: {}", c.name, resp.error.unwrap_or_default()));
        }
        print!("{}", resp.data.unwrap_or_default());
        return Ok(0);
    }
    let size = warren_sys::get_window_size(warren_sys::std_fd(0)).unwrap_or_default();
    proto::send_request(
        &mut stream,
        &Request::Console {
            tty: args.tty,
            rows: size.rows,
            cols: size.cols,
        },
    )?;
    let (resp, mut fds) = proto::read_response(&mut stream)?;
    if !resp.ok {
        return Err(anyhow!("{}: {}", c.name, resp.error.unwrap_or_default()));
    }
    let interactive = nix::unistd::isatty(warren_sys::std_fd(0)).unwrap_or(false);
    if interactive {
        eprint!(
            "\r\nConnected to tty {}\r\nType <Ctrl+{} q> to exit the console, <Ctrl+{} Ctrl+{}> to enter Ctrl+{} itself\r\n\r\n",
            args.tty,
            (b'a' + esc - 1) as char,
            (b'a' + esc - 1) as char,
            (b'a' + esc - 1) as char,
            (b'a' + esc - 1) as char
        );
    }
    let end = match fds.pop() {
        // a tty: the monitor handed us its pty master
        Some(master) => proxy_with(master.as_fd(), Some(esc), true)?,
        // the console: the monitor relays it over this connection
        None => proxy_with(stream.as_fd(), Some(esc), false)?,
    };
    if interactive && end == ProxyEnd::Detached {
        eprintln!();
    }
    Ok(0)
}
