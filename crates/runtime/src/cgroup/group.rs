//! One container's cgroup across every hierarchy: settings, membership, freezing, killing, removal.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::detect::{read_list, read_pseudo, Hierarchies, Layout};
use super::stats::{self, CgroupStats};
use super::CgroupError;
use crate::spec::CgroupSpec;

/// How long freezing may take before we give up (a task in uninterruptible sleep delays it).
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long processes may take to die after SIGKILL (exiting needs to release memory etc.).
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long rmdir is retried on EBUSY: the cgroup stays busy briefly after its last task exits.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MemberKind {
    V1 {
        controllers: Vec<String>,
        name: Option<String>,
    },
    Unified,
}

/// The container's cgroup directory in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Member {
    pub(super) kind: MemberKind,
    pub(super) path: PathBuf,
}

impl Member {
    fn has_v1(&self, controller: &str) -> bool {
        matches!(&self.kind, MemberKind::V1 { controllers, .. } if controllers.iter().any(|c| c == controller))
    }
}

/// A container's (or monitor's) cgroup in every hierarchy of the host.
#[derive(Debug, Clone)]
pub struct ContainerCgroup {
    hier: Hierarchies,
    name: String,
    members: Vec<Member>,
}

/// What the cgroup2 equivalent of a v1 key is, and the other way round, for error messages.
const V1_V2_EQUIVALENTS: &[(&str, &str)] = &[
    ("memory.limit_in_bytes", "memory.max"),
    ("memory.soft_limit_in_bytes", "memory.low"),
    ("memory.memsw.limit_in_bytes", "memory.swap.max"),
    ("pids.max", "pids.max"),
    ("cpu.shares", "cpu.weight"),
    ("cpu.cfs_quota_us", "cpu.max"),
    ("cpuset.cpus", "cpuset.cpus"),
    ("cpuset.mems", "cpuset.mems"),
    ("blkio.weight", "io.weight"),
    ("blkio.throttle.read_bps_device", "io.max"),
    ("blkio.throttle.write_bps_device", "io.max"),
];

fn controller_of(key: &str) -> &str {
    key.split('.').next().unwrap_or(key)
}

/// Writes `value` to `path` in one write(2), as the kernel expects for cgroup files.
fn write_file(path: &Path, value: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

/// A cgroupfs file name, nothing that reaches another directory.
pub fn check_key(key: &str) -> Result<(), CgroupError> {
    if key.is_empty() || key.contains('/') || key.starts_with('.') || !key.contains('.') {
        return Err(CgroupError::Unavailable {
            key: key.to_string(),
            reason: "not a cgroup file name (CONTROLLER.FILE, such as memory.max)".into(),
        });
    }
    Ok(())
}

fn read_trimmed(path: &Path) -> Result<String, CgroupError> {
    read_pseudo(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// Pids in `dir` and every cgroup below it. With `missing_ok`, a directory without
/// `cgroup.procs` counts as empty (only used to decide whether a leftover cgroup can be reused).
pub(super) fn pids_in_tree(dir: &Path, missing_ok: bool) -> Result<Vec<i32>, CgroupError> {
    let mut out = Vec::new();
    let procs = dir.join("cgroup.procs");
    match read_pseudo(&procs) {
        Ok(s) => out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok())),
        Err(e) if missing_ok && e.kind() == io::ErrorKind::NotFound => {}
        // The cgroup went away under us (removed concurrently): no processes.
        Err(e) if e.kind() == io::ErrorKind::NotFound && !dir.exists() => {}
        Err(source) => {
            return Err(CgroupError::Read {
                path: procs,
                source,
            })
        }
    }
    for sub in subdirs(dir)? {
        out.extend(pids_in_tree(&sub, missing_ok)?);
    }
    Ok(out)
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in rd.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// rmdir `dir` after everything below it, retrying while the kernel still says EBUSY.
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    // a leaf goes at once; only a directory the kernel says is busy gets listed for children
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    for sub in subdirs(dir)? {
        remove_tree(&sub)?;
    }
    let start = Instant::now();
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < REMOVE_TIMEOUT => {
                sleep(POLL)
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

impl ContainerCgroup {
    pub(super) fn new(hier: Hierarchies, name: &str, members: Vec<Member>) -> ContainerCgroup {
        ContainerCgroup {
            hier,
            name: name.to_string(),
            members,
        }
    }

    /// The name it was created or opened under (`warren.payload.c1`, or `lxc.cgroup.dir`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn layout(&self) -> Layout {
        self.hier.layout()
    }

    pub fn hierarchies(&self) -> &Hierarchies {
        &self.hier
    }

    /// The cgroup in the cgroup2 hierarchy (for cgroup namespaces and mounting cgroupfs).
    pub fn unified_path(&self) -> Option<PathBuf> {
        self.unified().map(Path::to_path_buf)
    }

    /// The cgroup in the v1 hierarchy that `controller` is bound to.
    pub fn v1_path(&self, controller: &str) -> Option<PathBuf> {
        self.members
            .iter()
            .find(|m| m.has_v1(controller))
            .map(|m| m.path.clone())
    }

    /// The cgroup's directory in every hierarchy (v1 ones first, cgroup2 last).
    pub fn paths(&self) -> Vec<PathBuf> {
        self.members.iter().map(|m| m.path.clone()).collect()
    }

    fn unified(&self) -> Option<&Path> {
        self.members
            .iter()
            .find(|m| m.kind == MemberKind::Unified)
            .map(|m| m.path.as_path())
    }

    fn v1_member(&self, controller: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.has_v1(controller))
    }

    /// Keys of `spec` that [`ContainerCgroup::apply`] skips because this host cannot enforce them
    /// through cgroupfs: device rules without a v1 devices hierarchy (cgroup2 enforces them with
    /// a BPF program, which warren does not load yet). The caller should warn about them.
    pub fn unenforced(&self, spec: &CgroupSpec) -> Vec<String> {
        let mut out = Vec::new();
        for (key, _) in &spec.v1 {
            if self.skipped_device_key(key, false) {
                out.push(format!("lxc.cgroup.{key}"));
            }
        }
        for (key, _) in &spec.v2 {
            if self.skipped_device_key(key, true) {
                out.push(format!("lxc.cgroup2.{key}"));
            }
        }
        out
    }

    fn skipped_device_key(&self, key: &str, v2: bool) -> bool {
        controller_of(key) == "devices"
            && self.unified().is_some()
            && (v2 || self.v1_member("devices").is_none())
    }

    /// Writes the raw settings: `spec.v1` into the v1 hierarchy of each key's controller (in
    /// order, so `devices.deny = a` before the allows), `spec.v2` into the cgroup2 hierarchy.
    pub fn apply(&self, spec: &CgroupSpec) -> Result<(), CgroupError> {
        // The memsw limit may never be below the memory limit, so the kernel refuses to set it
        // first when lowering both: set memory.memsw.* after everything else, as LXC does.
        let (memsw, rest): (Vec<_>, Vec<_>) = spec
            .v1
            .iter()
            .partition(|(k, _)| k.starts_with("memory.memsw."));
        // consecutive settings of one file (a config's dozen devices.allow lines) go through
        // one open file: each write is its own setting to the kernel
        let mut open: Option<(PathBuf, fs::File)> = None;
        for (key, value) in rest.into_iter().chain(memsw) {
            if self.skipped_device_key(key, false) {
                continue;
            }
            let dir = self.v1_target(key)?;
            self.write_setting(
                &mut open,
                &format!("lxc.cgroup.{key}"),
                dir.join(key),
                value,
            )?;
        }
        for (key, value) in &spec.v2 {
            if self.skipped_device_key(key, true) {
                continue;
            }
            let dir = self.v2_target(key)?;
            self.write_setting(
                &mut open,
                &format!("lxc.cgroup2.{key}"),
                dir.join(key),
                value,
            )?;
        }
        Ok(())
    }

    /// Whether `key` (a cgroupfs file name: `memory.max`, `memory.limit_in_bytes`) is in the
    /// cgroup2 hierarchy here: its controller is not a v1 one on this host (`lxc-cgroup`'s rule).
    pub fn key_is_v2(&self, key: &str) -> bool {
        self.v1_member(controller_of(key)).is_none()
    }

    /// The value of cgroupfs file `key` of this cgroup (`lxc-cgroup NAME KEY`), in the cgroup2
    /// hierarchy or the v1 one of its controller.
    pub fn read_setting(&self, key: &str, v2: bool) -> Result<String, CgroupError> {
        check_key(key)?;
        let dir = if v2 {
            self.v2_target(key)?
        } else {
            self.v1_target(key)?
        };
        read_trimmed(&dir.join(key))
    }

    /// Writes `value` to `path`, through `open` when that is the same file's.
    fn write_setting(
        &self,
        open: &mut Option<(PathBuf, fs::File)>,
        lxc_key: &str,
        path: PathBuf,
        value: &str,
    ) -> Result<(), CgroupError> {
        let written = match open {
            Some((p, f)) if *p == path => f.write_all(value.as_bytes()),
            _ => {
                *open = None;
                fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|mut f| {
                        f.write_all(value.as_bytes())?;
                        *open = Some((path.clone(), f));
                        Ok(())
                    })
            }
        };
        written.map_err(|source| CgroupError::Setting {
            key: lxc_key.to_string(),
            value: value.to_string(),
            path,
            source,
        })
    }

    fn v1_target(&self, key: &str) -> Result<PathBuf, CgroupError> {
        let controller = controller_of(key);
        if let Some(m) = self.v1_member(controller) {
            return Ok(m.path.clone());
        }
        let layout = self.layout();
        let equivalent = V1_V2_EQUIVALENTS
            .iter()
            .find(|(v1, _)| *v1 == key)
            .map(|(_, v2)| format!("use lxc.cgroup2.{v2}"));
        let in_v2 = self
            .hier
            .unified()
            .is_some_and(|u| u.controllers.iter().any(|c| c == controller));
        let reason = match layout {
            Layout::Unified => format!(
                "this is a cgroup v1 key, and this host is {}: {}",
                layout.describe(),
                equivalent.unwrap_or_else(|| format!("use the lxc.cgroup2.{controller}.* keys"))
            ),
            _ if in_v2 => format!(
                "the {controller} controller is not a v1 controller on this {} host (it is in the cgroup2 hierarchy here: {})",
                layout.describe(),
                equivalent.unwrap_or_else(|| format!("use the lxc.cgroup2.{controller}.* keys"))
            ),
            _ => format!(
                "the {controller} controller is not available on this {} host (not mounted as a v1 hierarchy)",
                layout.describe()
            ),
        };
        Err(CgroupError::Unavailable {
            key: format!("lxc.cgroup.{key}"),
            reason,
        })
    }

    fn v2_target(&self, key: &str) -> Result<PathBuf, CgroupError> {
        let lxc_key = format!("lxc.cgroup2.{key}");
        let layout = self.layout();
        let Some(dir) = self.unified() else {
            let equivalent = V1_V2_EQUIVALENTS
                .iter()
                .find(|(_, v2)| *v2 == key)
                .map_or_else(
                    || format!("use the lxc.cgroup.{}.* keys", controller_of(key)),
                    |(v1, _)| format!("use lxc.cgroup.{v1}"),
                );
            return Err(CgroupError::Unavailable {
                key: lxc_key,
                reason: format!(
                    "this host has no cgroup2 hierarchy ({}): {equivalent}",
                    layout.describe()
                ),
            });
        };
        let controller = controller_of(key);
        // cgroup.* files belong to the core, not to a controller: always there.
        if controller == "cgroup" {
            return Ok(dir.to_path_buf());
        }
        let enabled = read_list(&dir.join("cgroup.controllers"))?;
        if enabled.iter().any(|c| c == controller) {
            return Ok(dir.to_path_buf());
        }
        let offered = self
            .hier
            .unified()
            .is_some_and(|u| u.controllers.iter().any(|c| c == controller));
        let reason = if let Some(h) = self.hier.v1_for(controller) {
            let equivalent = V1_V2_EQUIVALENTS
                .iter()
                .find(|(_, v2)| *v2 == key)
                .map_or_else(
                    || format!("use the lxc.cgroup.{controller}.* keys"),
                    |(v1, _)| format!("use lxc.cgroup.{v1}"),
                );
            format!(
                "the {controller} controller is not available in the cgroup2 hierarchy of this {} host (it is a v1 controller here, mounted at {}: {equivalent})",
                layout.describe(),
                h.mountpoint.display()
            )
        } else if offered {
            format!(
                "the {controller} controller is offered by the kernel but is not enabled for this cgroup ({}); a parent cgroup with processes of its own cannot delegate controllers",
                dir.display()
            )
        } else {
            let all = self
                .hier
                .unified()
                .map(|u| u.controllers.join(" "))
                .unwrap_or_default();
            format!(
                "the {controller} controller is not available in the cgroup2 hierarchy of this {} host (available: {})",
                layout.describe(),
                if all.is_empty() { "none" } else { all.as_str() }
            )
        };
        Err(CgroupError::Unavailable {
            key: lxc_key,
            reason,
        })
    }

    /// Moves process `pid` (with its threads) into the cgroup in every hierarchy.
    pub fn attach(&self, pid: i32) -> Result<(), CgroupError> {
        for m in &self.members {
            let path = m.path.join("cgroup.procs");
            write_file(&path, &pid.to_string()).map_err(|source| CgroupError::Attach {
                pid,
                path,
                source,
            })?;
        }
        Ok(())
    }

    /// Moves the calling thread into this cgroup in every v1 hierarchy by writing `0` to their
    /// `tasks` files. A thread moving itself alone is the one migration the kernel makes without
    /// its global threadgroup lock, whose first writer after an idle spell waits a whole RCU
    /// grace period (10-20 ms); `cgroup.procs` always takes it. The caller must be
    /// single-threaded, so that its one thread is the whole process. On an error the thread
    /// may sit in some of them: [`leave_v1_self`] takes it back.
    pub fn enter_v1_self(&self) -> Result<(), CgroupError> {
        for m in self
            .members
            .iter()
            .filter(|m| m.kind != MemberKind::Unified)
        {
            let path = m.path.join("tasks");
            write_file(&path, "0").map_err(|source| CgroupError::Attach {
                pid: 0,
                path,
                source,
            })?;
        }
        Ok(())
    }

    /// The directory whose tree lists every process: cgroup2 if there, else the first v1 one.
    fn procs_dir(&self) -> Option<&Path> {
        // (one still there: after a partial [`ContainerCgroup::remove_if_empty`])
        self.unified().filter(|p| p.exists()).or_else(|| {
            self.members
                .iter()
                .map(|m| m.path.as_path())
                .find(|p| p.exists())
        })
    }

    /// Removes every directory of this cgroup that is empty, with one rmdir each and no
    /// listing: the usual end of a container whose processes are all gone. True when none is
    /// left; otherwise what remains (busy, or with cgroups below) is for
    /// [`ContainerCgroup::kill_all`] and [`ContainerCgroup::remove`].
    pub fn remove_if_empty(&self) -> bool {
        let mut all = true;
        for m in &self.members {
            match fs::remove_dir(&m.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(_) => all = false,
            }
        }
        all
    }

    /// Every pid in the cgroup and in cgroups below it, sorted.
    pub fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(dir) = self.procs_dir() else {
            return Ok(Vec::new());
        };
        let mut pids = pids_in_tree(dir, false)?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Which freezer to use: on a unified host cgroup2's; otherwise the v1 freezer controller,
    /// falling back to cgroup2's core freezer (kernel >= 5.2) when freezer isn't mounted.
    fn freezer(&self) -> Result<Freezer, CgroupError> {
        if self.layout() != Layout::Unified {
            if let Some(m) = self.v1_member("freezer") {
                return Ok(Freezer::V1(m.path.clone()));
            }
        }
        if let Some(u) = self.unified() {
            if u.join("cgroup.freeze").exists() {
                return Ok(Freezer::V2(u.to_path_buf()));
            }
        }
        Err(CgroupError::Unsupported(format!(
            "cannot freeze {}: no v1 freezer hierarchy and no cgroup.freeze (kernel >= 5.2) on this {} host",
            self.name,
            self.layout().describe()
        )))
    }

    /// Freezes every process and waits until the kernel reports the cgroup frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match self.freezer()? {
            Freezer::V2(dir) => {
                let path = dir.join("cgroup.freeze");
                write_file(&path, "1").map_err(|source| CgroupError::Write {
                    path: path.clone(),
                    value: "1".into(),
                    source,
                })?;
                self.wait_until(&dir.join("cgroup.events"), "cgroup.events frozen 1", || {
                    v2_frozen(&dir)
                })
            }
            Freezer::V1(dir) => {
                let path = dir.join("freezer.state");
                let start = Instant::now();
                loop {
                    // Re-writing FROZEN retries tasks that could not be frozen yet.
                    write_file(&path, "FROZEN").map_err(|source| CgroupError::Write {
                        path: path.clone(),
                        value: "FROZEN".into(),
                        source,
                    })?;
                    if read_trimmed(&path)? == "FROZEN" {
                        return Ok(());
                    }
                    if start.elapsed() > FREEZE_TIMEOUT {
                        // Don't leave it half frozen ("FREEZING") behind.
                        let _ = write_file(&path, "THAWED");
                        return Err(CgroupError::Timeout {
                            what: "freezer.state FROZEN",
                            path,
                            secs: FREEZE_TIMEOUT.as_secs(),
                        });
                    }
                    sleep(POLL);
                }
            }
        }
    }

    /// Thaws the cgroup and waits until it reports so.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.freezer()? {
            Freezer::V2(dir) => {
                let path = dir.join("cgroup.freeze");
                write_file(&path, "0").map_err(|source| CgroupError::Write {
                    path: path.clone(),
                    value: "0".into(),
                    source,
                })?;
                self.wait_until(&dir.join("cgroup.events"), "cgroup.events frozen 0", || {
                    v2_frozen(&dir).map(|f| !f)
                })
            }
            Freezer::V1(dir) => {
                let path = dir.join("freezer.state");
                write_file(&path, "THAWED").map_err(|source| CgroupError::Write {
                    path: path.clone(),
                    value: "THAWED".into(),
                    source,
                })?;
                self.wait_until(&path, "freezer.state THAWED", || {
                    Ok(read_trimmed(&path)? == "THAWED")
                })
            }
        }
    }

    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        match self.freezer()? {
            Freezer::V2(dir) => v2_frozen(&dir),
            Freezer::V1(dir) => Ok(read_trimmed(&dir.join("freezer.state"))? == "FROZEN"),
        }
    }

    fn wait_until(
        &self,
        path: &Path,
        what: &'static str,
        mut done: impl FnMut() -> Result<bool, CgroupError>,
    ) -> Result<(), CgroupError> {
        let start = Instant::now();
        while !done()? {
            if start.elapsed() > FREEZE_TIMEOUT {
                return Err(CgroupError::Timeout {
                    what,
                    path: path.to_path_buf(),
                    secs: FREEZE_TIMEOUT.as_secs(),
                });
            }
            sleep(POLL);
        }
        Ok(())
    }

    /// Usage figures for `lxc-info`; a figure this host doesn't provide is `None`.
    pub fn stats(&self) -> CgroupStats {
        let read = |p: PathBuf| fs::read_to_string(p).ok();
        let mut s = CgroupStats::default();
        let unified = self.unified();
        if let Some(m) = self.v1_member("memory") {
            let usage =
                read(m.path.join("memory.usage_in_bytes")).and_then(|t| stats::parse_u64(&t));
            s.memory_bytes = usage;
            s.kmem_bytes =
                read(m.path.join("memory.kmem.usage_in_bytes")).and_then(|t| stats::parse_u64(&t));
            let memsw =
                read(m.path.join("memory.memsw.usage_in_bytes")).and_then(|t| stats::parse_u64(&t));
            s.swap_bytes = match (memsw, usage) {
                (Some(sw), Some(u)) => Some(sw.saturating_sub(u)),
                _ => None,
            };
        } else if let Some(u) = unified {
            s.memory_bytes = read(u.join("memory.current")).and_then(|t| stats::parse_u64(&t));
            s.kmem_bytes = read(u.join("memory.stat")).and_then(|t| stats::parse_v2_kmem(&t));
            s.swap_bytes = read(u.join("memory.swap.current")).and_then(|t| stats::parse_u64(&t));
        }
        s.cpu_ns = self
            .v1_member("cpuacct")
            .and_then(|m| read(m.path.join("cpuacct.usage")))
            .and_then(|t| stats::parse_u64(&t))
            .or_else(|| {
                unified
                    .and_then(|u| read(u.join("cpu.stat")))
                    .and_then(|t| stats::parse_v2_cpu_ns(&t))
            });
        s.blkio_bytes = self
            .v1_member("blkio")
            .and_then(|m| {
                read(m.path.join("blkio.throttle.io_service_bytes"))
                    .or_else(|| read(m.path.join("blkio.io_service_bytes")))
            })
            .and_then(|t| stats::parse_v1_blkio_total(&t))
            .or_else(|| {
                unified
                    .and_then(|u| read(u.join("io.stat")))
                    .map(|t| stats::parse_v2_io_bytes(&t))
            });
        s
    }

    /// Kills every process in the cgroup and below it, and waits until none is left.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        let start = Instant::now();
        let cgroup_kill = self
            .unified()
            .map(|u| u.join("cgroup.kill"))
            .filter(|p| p.exists());
        // (never the caller: a monitor that could not leave the cgroup must not kill itself)
        let me = std::process::id() as i32;
        loop {
            let pids: Vec<i32> = self.procs()?.into_iter().filter(|p| *p != me).collect();
            if pids.is_empty() {
                return Ok(());
            }
            if start.elapsed() > KILL_TIMEOUT {
                return Err(CgroupError::Timeout {
                    what: "all processes to exit after SIGKILL",
                    path: self.procs_dir().map(Path::to_path_buf).unwrap_or_default(),
                    secs: KILL_TIMEOUT.as_secs(),
                });
            }
            // cgroup.kill (5.14+) also catches processes forking while we signal them.
            let killed_by_kernel = cgroup_kill
                .as_ref()
                .is_some_and(|p| write_file(p, "1").is_ok());
            if !killed_by_kernel {
                for pid in pids {
                    match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                        Err(source) => return Err(CgroupError::Kill { pid, source }),
                    }
                }
            }
            // A task frozen by the v1 freezer cannot act on SIGKILL until it is thawed.
            if let Some(m) = self.v1_member("freezer") {
                let state = m.path.join("freezer.state");
                if fs::read_to_string(&state).is_ok_and(|s| s.trim() != "THAWED") {
                    let _ = write_file(&state, "THAWED");
                }
            }
            sleep(POLL);
        }
    }

    /// Removes the cgroup (and any below it) from every hierarchy; it must hold no processes.
    /// A cgroup that is already gone is fine.
    pub fn remove(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for m in &self.members {
            if let Err(e) = remove_tree(&m.path) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Takes the calling (single-threaded) process back to `homes`, its v1 cgroups from
/// [`Hierarchies::own_v1_paths`], the way [`ContainerCgroup::enter_v1_self`] left them. A home
/// whose `tasks` refuses gets the pid in `cgroup.procs` (the slow way): the caller must never
/// stay counted in a container's cgroup.
pub fn leave_v1_self(homes: &[PathBuf]) -> Result<(), CgroupError> {
    let mut first_err = None;
    for home in homes {
        if write_file(&home.join("tasks"), "0").is_ok() {
            continue;
        }
        let path = home.join("cgroup.procs");
        if let Err(source) = write_file(&path, &std::process::id().to_string()) {
            first_err.get_or_insert(CgroupError::Attach {
                pid: std::process::id() as i32,
                path,
                source,
            });
        }
    }
    first_err.map_or(Ok(()), Err)
}

enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

fn v2_frozen(dir: &Path) -> Result<bool, CgroupError> {
    let path = dir.join("cgroup.events");
    let text = read_pseudo(&path).map_err(|source| CgroupError::Read { path, source })?;
    Ok(stats::parse_v2_frozen(&text))
}
