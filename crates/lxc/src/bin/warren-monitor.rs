//! `warren-monitor`: a container's monitor as a small binary of its own (what `warren-lxc start`
//! runs when it sits next to warren-lxc), so an idle monitor maps little more than the monitor code.
#![forbid(unsafe_code)]

/// (musl builds: see Cargo.toml)
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() {
    std::process::exit(warren_runtime::start::monitor_main());
}
