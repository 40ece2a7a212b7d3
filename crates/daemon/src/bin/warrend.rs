//! `warrend`: the manager daemon (Incus's REST API on $WARREN_DIR/unix.socket).
#![forbid(unsafe_code)]

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "warrend",
    version,
    about = "The warren manager daemon: Incus's REST API on $WARREN_DIR/unix.socket"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Log every request, and everything --verbose logs
    #[arg(long, short = 'd')]
    debug: bool,
    /// Log operations as they start and end (warnings and errors are always logged)
    #[arg(long, short = 'v')]
    verbose: bool,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Stop every instance cleanly (each within boot.host_shutdown_timeout, 30 s by default),
    /// remember which ran for the next start, and end the running warrend (as SIGPWR does)
    Shutdown,
}

/// `warrend shutdown`: asks the running daemon to shut down and waits for it.
fn shutdown(dir: &std::path::Path) -> i32 {
    use std::io::{Read, Write};
    let socket = dir.join("unix.socket");
    let mut s = match std::os::unix::net::UnixStream::connect(&socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: connect to warrend at {}: {e} (is it running?)",
                socket.display()
            );
            return 1;
        }
    };
    let sent = s.write_all(
        b"PUT /internal/shutdown HTTP/1.1\r\nHost: unix.socket\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    if sent.is_err() || !answer.starts_with("HTTP/1.1 200") {
        eprintln!("error: warrend did not confirm the shutdown");
        return 1;
    }
    0
}

fn main() {
    let args = Args::parse();
    if let Some(Command::Shutdown) = args.command {
        std::process::exit(shutdown(&warren_daemon::warren_dir()));
    }
    warren_daemon::log::set_level(if args.debug {
        warren_daemon::log::Level::Debug
    } else if args.verbose {
        warren_daemon::log::Level::Info
    } else {
        warren_daemon::log::Level::Warn
    });
    // every exec holds several sockets and pipes: with many clients at once the usual soft limit
    // of 1024 descriptors runs out, and connections would wait unaccepted
    if let Ok((_, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        let _ =
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
    let dir = warren_daemon::warren_dir();
    let daemon = match warren_daemon::Daemon::open(&dir) {
        Ok(d) => std::sync::Arc::new(d),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let listener = match daemon.bind() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    warren_daemon::log::info(&format!(
        "listening on {}",
        dir.join("unix.socket").display()
    ));
    // SIGPWR (the host going down, as init tells incusd): instances stopped cleanly, then exit.
    // Blocked here, before any thread starts, so that only the waiting thread takes it.
    let mut power = nix::sys::signal::SigSet::empty();
    power.add(nix::sys::signal::Signal::SIGPWR);
    if power.thread_block().is_ok() {
        let d = daemon.clone();
        std::thread::spawn(move || {
            if power.wait().is_ok() {
                warren_daemon::log::info("SIGPWR: shutting down the instances");
                warren_daemon::boot::shutdown(&d);
                std::process::exit(0);
            }
        });
    }
    daemon.serve(listener);
}
