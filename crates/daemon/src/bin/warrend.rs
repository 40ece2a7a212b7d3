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
