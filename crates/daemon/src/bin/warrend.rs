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
    /// Log every request
    #[arg(long)]
    debug: bool,
}

fn main() {
    let args = Args::parse();
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
    if args.debug {
        eprintln!(
            "warrend: listening on {}",
            dir.join("unix.socket").display()
        );
    }
    daemon.serve(listener);
}
