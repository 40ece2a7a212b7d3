//! `warren-lxc`: the lxc-* tools. Answers as `warren-lxc SUBCOMMAND` and, through a link, as
//! `lxc-SUBCOMMAND`; re-executed as `[warren monitor]` it is a container's monitor.
#![forbid(unsafe_code)]

/// (musl builds: see Cargo.toml)
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

mod cmd;
mod common;
mod lxcnet;
mod status;
mod templates;
mod user;

use std::ffi::OsString;

fn main() {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let arg0 = args.first().cloned().unwrap_or_default();
    if arg0 == warren_runtime::start::MONITOR_ARGV0 {
        std::process::exit(warren_runtime::start::monitor_main());
    }
    let base = std::path::Path::new(&arg0)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // lxc-start ARGS... is warren-lxc start ARGS...
    if let Some(sub) = base.strip_prefix("lxc-") {
        args.splice(0..1, [OsString::from("warren-lxc"), OsString::from(sub)]);
    }
    let cli = match cmd::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", common::error_line(&e));
            1
        }
    };
    std::process::exit(code);
}
