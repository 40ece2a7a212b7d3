//! `warren-build`: builds LXC and Incus images from distrobuilder's YAML definitions.
#![forbid(unsafe_code)]

mod cmd;

use clap::Parser;

fn main() {
    let cli = match cmd::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if let Err(e) = cmd::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
