//! Starting a container in the background: the caller spawns a monitor process (this same binary,
//! re-executed under the name `[warren monitor] <lxcpath> <name>`), hands it the spec over a pipe and
//! waits for its one-line verdict.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::log::Level;
use crate::monitor::{self, MonitorOptions, StartError};
use crate::spec::ContainerSpec;

/// What the spawned monitor reads on its stdin.
#[derive(Debug, Serialize, Deserialize)]
pub struct MonitorLaunch {
    pub spec: ContainerSpec,
    pub log_file: Option<PathBuf>,
    pub log_level: Option<String>,
}

/// The process title of a monitor, as `ps` shows it (argv[0]).
pub const MONITOR_ARGV0: &str = "[warren monitor]";

/// Start `spec` in the background. `exe` is the binary that answers to [`MONITOR_ARGV0`] by calling
/// [`monitor_main`]. Returns init's pid once the container is RUNNING.
pub fn start_background(exe: &Path, launch: &MonitorLaunch) -> Result<i32, StartError> {
    SpawnedMonitor::spawn(exe, &launch.spec.lxcpath, &launch.spec.name)?.launch(launch)
}

/// A monitor process started ahead of its spec: it waits for the spec on its stdin, so the
/// caller can read the container's config while the monitor's exec runs (on another CPU).
/// Dropped without [`SpawnedMonitor::launch`], it gets no spec and exits quietly.
pub struct SpawnedMonitor {
    child: Option<std::process::Child>,
}

impl SpawnedMonitor {
    /// Start the monitor binary `exe` for the container `name` of `lxcpath` (its argv, for `ps`).
    pub fn spawn(exe: &Path, lxcpath: &Path, name: &str) -> Result<SpawnedMonitor, StartError> {
        let child = Command::new(exe)
            .arg0(MONITOR_ARGV0)
            .arg(lxcpath)
            .arg(name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // (no current_dir: the monitor moves to / itself, so that std can spawn it with
            // posix_spawn, a vfork that copies none of our page tables, rather than fork + exec)
            .spawn()
            .map_err(|source| StartError::Sys {
                what: "spawn the monitor".into(),
                source,
            })?;
        Ok(SpawnedMonitor { child: Some(child) })
    }

    /// Hand the monitor its launch and wait until the container is RUNNING (init's pid) or
    /// has failed.
    pub fn launch(mut self, launch: &MonitorLaunch) -> Result<i32, StartError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |source| StartError::Sys { what, source }
        };
        let Some(mut child) = self.child.take() else {
            return Err(StartError::Setup("the monitor was launched twice".into()));
        };
        let payload = serde_json::to_vec(launch).map_err(|e| StartError::Setup(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(&payload)
                .map_err(io("hand the spec to the monitor"))?;
        }
        let Some(stdout) = child.stdout.take() else {
            return Err(StartError::Setup("monitor has no status pipe".into()));
        };
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(io("read the monitor's status"))?;
        let line = line.trim_end();
        if let Some(pid) = line.strip_prefix("ok ") {
            // the monitor lives on in its own session; it is reaped by whoever adopts it
            std::mem::forget(child);
            return pid
                .parse()
                .map_err(|_| StartError::Setup(format!("monitor said {line:?}")));
        }
        let _ = child.wait();
        if let Some(msg) = line.strip_prefix("error ") {
            if msg.ends_with(" is already running") {
                return Err(StartError::AlreadyRunning(launch.spec.name.clone()));
            }
            return Err(StartError::Setup(msg.to_string()));
        }
        Err(StartError::Setup(
            "the monitor exited without saying why (run with -o LOGFILE -l DEBUG)".to_string(),
        ))
    }
}

impl Drop for SpawnedMonitor {
    /// Not launched: its stdin closes empty, and it exits at once (waited for, so no monitor
    /// outlives a start that failed before it began).
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

/// Entry point of a spawned monitor process: read the launch from stdin, detach from the caller's
/// session, report on stdout, then run until the container stops.
pub fn monitor_main() -> i32 {
    // out of the caller's working directory, which the monitor must not keep busy
    if std::env::set_current_dir("/").is_err() {
        return 1;
    }
    // what needs no spec is done while the caller is still reading the config
    let hierarchies = crate::cgroup::Hierarchies::detect();
    // (room for a whole spec: no growing from a 32-byte probe read)
    let mut input = Vec::with_capacity(64 << 10);
    if std::io::stdin().read_to_end(&mut input).is_err() {
        return 1;
    }
    // the start was given up before it began (see SpawnedMonitor)
    if input.is_empty() {
        return 0;
    }
    let launch: MonitorLaunch = match serde_json::from_slice(&input) {
        Ok(l) => l,
        Err(e) => {
            println!("error bad launch data: {e}");
            return 1;
        }
    };
    let _ = nix::unistd::setsid();
    let level = launch
        .log_level
        .as_deref()
        .and_then(Level::parse)
        .unwrap_or(Level::Error);
    let _ = crate::log::init(launch.log_file.as_deref(), level, &launch.spec.name);
    // stdin is the spec pipe: replace it with /dev/null so the container never reads from it
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = warren_sys::dup_onto(std::os::fd::AsFd::as_fd(&null), 0);
    }
    let status = StatusPipe { done: false };
    match monitor::run_detected(
        launch.spec,
        MonitorOptions::default(),
        Some(Box::new(status)),
        hierarchies,
    ) {
        Ok(_) => 0,
        Err(_) => 1,
    }
}

/// The status line goes to stdout; once written, stdout is pointed at /dev/null so the caller's
/// pipe closes and it can return.
struct StatusPipe {
    done: bool,
}

impl Write for StatusPipe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(buf.len());
        }
        std::io::stdout().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.done {
            return Ok(());
        }
        std::io::stdout().flush()?;
        self.done = true;
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            let fd = std::os::fd::AsFd::as_fd(&null);
            let _ = warren_sys::dup_onto(fd, 1);
            let _ = warren_sys::dup_onto(fd, 2);
        }
        Ok(())
    }
}
