//! Finding the host's cgroup hierarchies (v1 controllers, named v1 hierarchies, cgroup2) and
//! working out where a container's cgroup goes in each of them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::group::{ContainerCgroup, Member, MemberKind};
use super::CgroupError;
use crate::spec::CgroupSpec;

/// How the host mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// cgroup2 only (every modern distribution); named v1 hierarchies alone don't change that.
    Unified,
    /// v1 controllers plus a cgroup2 mount (systemd's "hybrid", e.g. /sys/fs/cgroup/unified).
    Hybrid,
    /// v1 only.
    Legacy,
}

impl Layout {
    /// How error messages and `lxc-checkconfig` name it.
    pub fn describe(self) -> &'static str {
        match self {
            Layout::Unified => "unified (cgroup2-only)",
            Layout::Hybrid => "hybrid (cgroup v1 + cgroup2)",
            Layout::Legacy => "legacy (cgroup v1-only)",
        }
    }
}

/// One v1 hierarchy mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Where it is mounted, as mountinfo says (e.g. `/sys/fs/cgroup/cpu,cpuacct`).
    pub mountpoint: PathBuf,
    /// Where to reach it from here (`mountpoint`, below the root prefix in tests).
    pub path: PathBuf,
    /// Controllers bound to it (`cpu`, `cpuacct`), empty for a purely named hierarchy.
    pub controllers: Vec<String>,
    /// `name=` of a named hierarchy (`systemd`).
    pub name: Option<String>,
    /// The cgroup that is mounted there (mountinfo's root field, `/` normally).
    pub mount_root: String,
}

impl V1Hierarchy {
    /// The hierarchy's entry as /proc/PID/cgroup spells it: `cpu,cpuacct` or `name=systemd`.
    fn proc_cgroup_key(&self) -> Vec<String> {
        let mut k = self.controllers.clone();
        if let Some(n) = &self.name {
            k.push(format!("name={n}"));
        }
        k.sort();
        k
    }
}

/// The cgroup2 mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedHierarchy {
    pub mountpoint: PathBuf,
    pub path: PathBuf,
    pub mount_root: String,
    /// Controllers the kernel offers at the mount's root (`cgroup.controllers`).
    pub controllers: Vec<String>,
}

/// The cgroup hierarchies mounted on this host.
#[derive(Debug, Clone)]
pub struct Hierarchies {
    pub(super) v1: Vec<V1Hierarchy>,
    pub(super) unified: Option<UnifiedHierarchy>,
    /// Contents of /proc/self/cgroup, for `lxc.cgroup.relative`; read lazily when absent.
    self_cgroup: Option<String>,
    /// Every cgroup goes below the caller's own (a regular user's delegated subtree).
    below_own: bool,
}

/// Mount options of a v1 cgroup mount that are not controller names.
const V1_NON_CONTROLLER_OPTS: &[&str] = &[
    "rw",
    "ro",
    "none",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
    "nosuid",
    "nodev",
    "noexec",
    "relatime",
];

/// One line of mountinfo, the fields this module needs.
struct MountEntry {
    root: String,
    mountpoint: PathBuf,
    fstype: String,
    super_opts: String,
}

/// Undo mountinfo's octal escapes (`\040` for a space and so on).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(oct, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        // Optional fields end at a lone "-"; fstype, source and super options follow it.
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if sep < 6 || fields.len() < sep + 4 {
            continue;
        }
        out.push(MountEntry {
            root: unescape(fields[3]),
            mountpoint: PathBuf::from(unescape(fields[4])),
            fstype: fields[sep + 1].to_string(),
            super_opts: fields[sep + 3].to_string(),
        });
    }
    out
}

/// `mountpoint` as reached from here: below `prefix` when testing with a fake tree.
fn reach(prefix: Option<&Path>, mountpoint: &Path) -> PathBuf {
    match prefix {
        Some(p) => p.join(mountpoint.strip_prefix("/").unwrap_or(mountpoint)),
        None => mountpoint.to_path_buf(),
    }
}

/// A file of procfs or cgroupfs, read whole. They report no size, so std's reader would probe
/// in 32-byte reads doubling from there (eight syscalls for a mountinfo); one buffer of a page
/// or more takes it in one or two.
pub(crate) fn read_pseudo(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut f = fs::File::open(path)?;
    let mut buf = Vec::with_capacity(8192);
    f.read_to_end(&mut buf)?;
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads a whitespace-separated list file such as `cgroup.controllers`; a missing file is empty.
pub(super) fn read_list(path: &Path) -> Result<Vec<String>, CgroupError> {
    match read_pseudo(path) {
        Ok(s) => Ok(s.split_whitespace().map(str::to_string).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Checks a cgroup path given by a caller or config: relative, no `..`, not empty.
fn check_rel(rel: &str) -> Result<PathBuf, CgroupError> {
    let trimmed = rel.trim_matches('/');
    let bad = |reason| CgroupError::InvalidName {
        name: rel.to_string(),
        reason,
    };
    if trimmed.is_empty() {
        return Err(bad("empty"));
    }
    let mut out = PathBuf::new();
    for c in trimmed.split('/') {
        match c {
            "" | "." => continue,
            ".." => return Err(bad("\"..\" is not allowed")),
            c => out.push(c),
        }
    }
    Ok(out)
}

impl Hierarchies {
    /// Reads this host's mounts.
    pub fn detect() -> Result<Hierarchies, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = read_pseudo(path).map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Hierarchies::detect_from(&text, None)
    }

    /// Parses `mountinfo`; with `root_prefix`, every mount point is looked up below it (tests).
    pub fn detect_from(
        mountinfo: &str,
        root_prefix: Option<&Path>,
    ) -> Result<Hierarchies, CgroupError> {
        let mut v1: Vec<V1Hierarchy> = Vec::new();
        let mut unified: Option<UnifiedHierarchy> = None;
        for m in parse_mountinfo(mountinfo) {
            match m.fstype.as_str() {
                "cgroup2" => {
                    // The same hierarchy can be mounted twice (bind mounts): the first one wins.
                    if unified.is_some() {
                        continue;
                    }
                    let path = reach(root_prefix, &m.mountpoint);
                    // Unreadable (odd permissions in a nested container): no controllers, and
                    // `apply` will say so per key rather than failing detection altogether.
                    let controllers =
                        read_list(&path.join("cgroup.controllers")).unwrap_or_default();
                    unified = Some(UnifiedHierarchy {
                        mountpoint: m.mountpoint,
                        path,
                        mount_root: m.root,
                        controllers,
                    });
                }
                "cgroup" => {
                    let mut controllers = Vec::new();
                    let mut name = None;
                    for opt in m.super_opts.split(',') {
                        if let Some(n) = opt.strip_prefix("name=") {
                            name = Some(n.to_string());
                        } else if opt.contains('=') || V1_NON_CONTROLLER_OPTS.contains(&opt) {
                            // release_agent=..., and flags that are not controllers.
                        } else if !opt.is_empty() {
                            controllers.push(opt.to_string());
                        }
                    }
                    if controllers.is_empty() && name.is_none() {
                        continue;
                    }
                    controllers.sort();
                    if v1
                        .iter()
                        .any(|h| h.controllers == controllers && h.name == name)
                    {
                        continue;
                    }
                    v1.push(V1Hierarchy {
                        path: reach(root_prefix, &m.mountpoint),
                        mountpoint: m.mountpoint,
                        controllers,
                        name,
                        mount_root: m.root,
                    });
                }
                _ => {}
            }
        }
        if v1.is_empty() && unified.is_none() {
            return Err(CgroupError::NoHierarchies("mountinfo".to_string()));
        }
        Ok(Hierarchies {
            v1,
            unified,
            self_cgroup: None,
            below_own: false,
        })
    }

    /// For a regular user: only the hierarchies whose cgroup the caller sits in is writable by
    /// it (delegated to it, by systemd or by hand), with every cgroup made below that one. The
    /// caller's cgroups are read once, here: a process that moves later still places its
    /// cgroups where it started. An error says how to get a delegated cgroup when there is none.
    pub fn delegated(mut self) -> Result<Hierarchies, CgroupError> {
        if self.self_cgroup.is_none() {
            let p = Path::new("/proc/self/cgroup");
            self.self_cgroup = Some(read_pseudo(p).map_err(|source| CgroupError::Read {
                path: p.to_path_buf(),
                source,
            })?);
        }
        self.below_own = true;
        let writable = |dir: &Path| {
            use nix::unistd::{access, AccessFlags};
            access(dir, AccessFlags::W_OK).is_ok()
                && access(&dir.join("cgroup.procs"), AccessFlags::W_OK).is_ok()
        };
        let keep_v1: Vec<bool> = self
            .v1
            .iter()
            .map(|h| {
                self.own_cgroup(Some(h))
                    .map(|own| writable(&h.path.join(own)))
                    .unwrap_or(false)
            })
            .collect();
        let keep_unified = self.unified.is_some()
            && self
                .own_cgroup(None)
                .map(|own| {
                    writable(
                        &self
                            .unified
                            .as_ref()
                            .map(|u| u.path.join(&own))
                            .unwrap_or_default(),
                    )
                })
                .unwrap_or(false);
        let mut keep = keep_v1.into_iter();
        self.v1.retain(|_| keep.next().unwrap_or(false));
        if !keep_unified {
            self.unified = None;
        }
        if self.v1.is_empty() && self.unified.is_none() {
            let uid = nix::unistd::getuid().as_raw();
            let root = self
                .unified_mount_hint()
                .unwrap_or_else(|| "/sys/fs/cgroup".into());
            return Err(CgroupError::Unsupported(format!(
                "no cgroup is delegated to uid {uid}: a regular user's containers need a cgroup of their own. \
                 On a systemd host run from a login session or under `systemd-run --user --scope -p Delegate=yes`; \
                 elsewhere, as root: mkdir {root}/u{uid} && chown -R {uid} {root}/u{uid}, then move your shell there (echo $$ > {root}/u{uid}/cgroup.procs)"
            )));
        }
        Ok(self)
    }

    /// Where cgroup2 is mounted on this host, for messages.
    fn unified_mount_hint(&self) -> Option<String> {
        let text = read_pseudo(Path::new("/proc/self/mountinfo")).ok()?;
        parse_mountinfo(&text)
            .into_iter()
            .find(|m| m.fstype == "cgroup2")
            .map(|m| m.mountpoint.display().to_string())
    }

    /// The cgroup a process returns to before its own is removed: the hierarchy roots, or for
    /// a regular user the cgroups it started in.
    pub fn home_paths(&self) -> Vec<PathBuf> {
        // (root's homes are the roots: /proc/self/cgroup is read only for a regular user)
        let text = if self.below_own {
            self.self_cgroup_text().ok()
        } else {
            None
        };
        let own =
            |h: Option<&V1Hierarchy>| text.as_deref().and_then(|t| self.own_cgroup_in(t, h).ok());
        let mut out = Vec::new();
        for h in &self.v1 {
            match own(Some(h)) {
                Some(own) => out.push(h.path.join(own)),
                None => out.push(h.path.clone()),
            }
        }
        if let Some(u) = &self.unified {
            match own(None) {
                Some(own) => out.push(u.path.join(own)),
                None => out.push(u.path.clone()),
            }
        }
        out
    }

    /// The calling process's own cgroup in every v1 hierarchy, read now: where it goes back to
    /// after [`ContainerCgroup::enter_v1_self`].
    pub fn own_v1_paths(&self) -> Result<Vec<PathBuf>, CgroupError> {
        // read now (once, for every hierarchy): a copy kept from earlier (a regular user's) may
        // predate a move since
        let text = read_self_cgroup()?;
        self.v1
            .iter()
            .map(|h| Ok(h.path.join(self.own_cgroup_in(&text, Some(h))?)))
            .collect()
    }

    /// Uses `text` instead of /proc/self/cgroup for `lxc.cgroup.relative` placement (tests).
    pub fn with_self_cgroup(mut self, text: &str) -> Hierarchies {
        self.self_cgroup = Some(text.to_string());
        self
    }

    pub fn layout(&self) -> Layout {
        let v1_controllers = self.v1.iter().any(|h| !h.controllers.is_empty());
        match (v1_controllers, self.unified.is_some()) {
            (true, true) => Layout::Hybrid,
            (true, false) => Layout::Legacy,
            // Named v1 hierarchies (name=systemd for old guests) next to cgroup2 keep it unified.
            (false, _) if self.unified.is_some() => Layout::Unified,
            (false, _) => Layout::Legacy,
        }
    }

    pub fn v1(&self) -> &[V1Hierarchy] {
        &self.v1
    }

    pub fn unified(&self) -> Option<&UnifiedHierarchy> {
        self.unified.as_ref()
    }

    /// The v1 hierarchy `controller` is bound to.
    pub fn v1_for(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
    }

    /// Only the hierarchies that track processes: the unified one and named v1 hierarchies
    /// (`name=systemd`). A monitor needs its own cgroup there (so a session manager reaping the
    /// caller's cgroup leaves it alone), not in every v1 controller, where each migration costs.
    pub fn tracking_only(&self) -> Hierarchies {
        let mut h = self.clone();
        h.v1.retain(|v| v.controllers.is_empty());
        h
    }

    /// Creates `rel` (e.g. `warren.payload.c1`) at the root of every hierarchy.
    pub fn create(&self, rel: &str) -> Result<ContainerCgroup, CgroupError> {
        let targets = self.targets(rel, false)?;
        self.create_targets(rel, targets)
    }

    /// Creates the container's cgroup as `spec` places it: `lxc.cgroup.dir` instead of
    /// `default_name`, below the caller's own cgroup with `lxc.cgroup.relative`.
    pub fn create_for(
        &self,
        spec: &CgroupSpec,
        default_name: &str,
    ) -> Result<ContainerCgroup, CgroupError> {
        let rel = spec.dir.as_deref().unwrap_or(default_name);
        let targets = self.targets(rel, spec.relative)?;
        self.create_targets(rel, targets)
    }

    /// Opens the existing cgroup `rel` at the hierarchy roots (stats, attach, freeze).
    pub fn open(&self, rel: &str) -> Result<ContainerCgroup, CgroupError> {
        let targets = self.targets(rel, false)?;
        self.open_targets(rel, targets)
    }

    /// Opens the existing cgroup placed as `spec` says (see [`Hierarchies::create_for`]).
    pub fn open_for(
        &self,
        spec: &CgroupSpec,
        default_name: &str,
    ) -> Result<ContainerCgroup, CgroupError> {
        let rel = spec.dir.as_deref().unwrap_or(default_name);
        let targets = self.targets(rel, spec.relative)?;
        self.open_targets(rel, targets)
    }

    /// Opens an existing cgroup by its directories (one per hierarchy, as a monitor reports
    /// them): wherever it was placed, `lxc.cgroup.dir`, relative or below a regular user's own.
    pub fn open_paths(&self, paths: &[PathBuf]) -> Result<ContainerCgroup, CgroupError> {
        let mut members = Vec::new();
        for h in &self.v1 {
            if let Some(p) = paths.iter().find(|p| p.starts_with(&h.path)) {
                members.push(Member {
                    kind: MemberKind::V1 {
                        controllers: h.controllers.clone(),
                        name: h.name.clone(),
                    },
                    path: p.clone(),
                });
            }
        }
        if let Some(u) = &self.unified {
            // v1 hierarchies may be mounted below the cgroup2 mount's parent, never inside it
            if let Some(p) = paths
                .iter()
                .find(|p| p.starts_with(&u.path) && !self.v1.iter().any(|h| p.starts_with(&h.path)))
            {
                members.push(Member {
                    kind: MemberKind::Unified,
                    path: p.clone(),
                });
            }
        }
        let members: Vec<Member> = members.into_iter().filter(|m| m.path.is_dir()).collect();
        let Some(first) = members.first() else {
            return Err(CgroupError::NotFound(
                paths
                    .first()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ));
        };
        let rel = first
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(ContainerCgroup::new(self.clone(), &rel, members))
    }

    /// The caller's own cgroup in hierarchy `h` (None: unified), relative to the mount.
    fn own_cgroup(&self, h: Option<&V1Hierarchy>) -> Result<PathBuf, CgroupError> {
        self.own_cgroup_in(&self.self_cgroup_text()?, h)
    }

    /// The kept copy of /proc/self/cgroup, else the file read now.
    fn self_cgroup_text(&self) -> Result<std::borrow::Cow<'_, str>, CgroupError> {
        match &self.self_cgroup {
            Some(t) => Ok(std::borrow::Cow::Borrowed(t)),
            None => read_self_cgroup().map(std::borrow::Cow::Owned),
        }
    }

    /// [`Hierarchies::own_cgroup`] from `text`, the contents of /proc/self/cgroup.
    fn own_cgroup_in(&self, text: &str, h: Option<&V1Hierarchy>) -> Result<PathBuf, CgroupError> {
        let (want, mount_root) = match h {
            Some(h) => (Some(h.proc_cgroup_key()), h.mount_root.as_str()),
            None => (
                None,
                self.unified.as_ref().map_or("/", |u| u.mount_root.as_str()),
            ),
        };
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let matches = match &want {
                None => id == "0" && ctrls.is_empty(),
                Some(key) => {
                    let mut got: Vec<String> = ctrls.split(',').map(str::to_string).collect();
                    got.sort();
                    !ctrls.is_empty() && &got == key
                }
            };
            if matches {
                // /proc/self/cgroup is relative to the hierarchy's root; the mount may show
                // only a subtree of it (mountinfo root), which our paths are relative to.
                let p = Path::new(path);
                let rel = p.strip_prefix(mount_root).unwrap_or(p);
                let rel = rel.strip_prefix("/").unwrap_or(rel);
                return Ok(rel.to_path_buf());
            }
        }
        Err(CgroupError::Unsupported(format!(
            "lxc.cgroup.relative: this process's cgroup in the {} hierarchy is not listed in /proc/self/cgroup",
            h.map_or("cgroup2".to_string(), |h| h.proc_cgroup_key().join(","))
        )))
    }

    /// Where `rel` goes in every hierarchy: (member, directory the path is relative to, rel).
    fn targets(&self, rel: &str, relative: bool) -> Result<Vec<(Member, PathBuf)>, CgroupError> {
        let rel = check_rel(rel)?;
        let relative = relative || self.below_own;
        let text = if relative {
            Some(self.self_cgroup_text()?)
        } else {
            None
        };
        let own = |h: Option<&V1Hierarchy>| match &text {
            Some(t) => self.own_cgroup_in(t, h),
            None => Ok(PathBuf::new()),
        };
        let mut out = Vec::new();
        for h in &self.v1 {
            let base = if relative {
                h.path.join(own(Some(h))?)
            } else {
                h.path.clone()
            };
            let member = Member {
                kind: MemberKind::V1 {
                    controllers: h.controllers.clone(),
                    name: h.name.clone(),
                },
                path: base.join(&rel),
            };
            out.push((member, base));
        }
        if let Some(u) = &self.unified {
            let base = if relative {
                u.path.join(own(None)?)
            } else {
                u.path.clone()
            };
            let member = Member {
                kind: MemberKind::Unified,
                path: base.join(&rel),
            };
            out.push((member, base));
        }
        Ok(out)
    }

    fn open_targets(
        &self,
        rel: &str,
        targets: Vec<(Member, PathBuf)>,
    ) -> Result<ContainerCgroup, CgroupError> {
        let members: Vec<Member> = targets
            .into_iter()
            .map(|(m, _)| m)
            .filter(|m| m.path.is_dir())
            .collect();
        if members.is_empty() {
            return Err(CgroupError::NotFound(rel.to_string()));
        }
        Ok(ContainerCgroup::new(self.clone(), rel, members))
    }

    fn create_targets(
        &self,
        rel: &str,
        targets: Vec<(Member, PathBuf)>,
    ) -> Result<ContainerCgroup, CgroupError> {
        let mut created: Vec<PathBuf> = Vec::new();
        match self.create_all(&targets, &mut created) {
            Ok(()) => Ok(ContainerCgroup::new(
                self.clone(),
                rel,
                targets.into_iter().map(|(m, _)| m).collect(),
            )),
            Err(e) => {
                // Leave nothing behind: the directories we made are empty, rmdir suffices.
                for dir in created.iter().rev() {
                    let _ = fs::remove_dir(dir);
                }
                Err(e)
            }
        }
    }

    fn create_all(
        &self,
        targets: &[(Member, PathBuf)],
        created: &mut Vec<PathBuf>,
    ) -> Result<(), CgroupError> {
        for (member, base) in targets {
            // mkdir each missing component: lxc.cgroup.dir may be nested ("a/b"). mkdir first and
            // look only at what exists already (the usual start makes every directory new).
            let rel = member.path.strip_prefix(base).unwrap_or(&member.path);
            let is_cpuset = matches!(&member.kind, MemberKind::V1 { controllers, .. }
                if controllers.iter().any(|c| c == "cpuset"));
            // A nested one (the inner cgroup) leaf first: its parent was usually made just
            // before, and one mkdir then does instead of one per component.
            let leaf_made =
                rel.components().nth(1).is_some() && fs::create_dir(&member.path).is_ok();
            if leaf_made {
                created.push(member.path.clone());
                if is_cpuset {
                    init_cpuset(&member.path)?;
                }
            }
            let mut cur = base.clone();
            for comp in rel.components().filter(|_| !leaf_made) {
                cur.push(comp);
                match fs::create_dir(&cur) {
                    Ok(()) => {
                        created.push(cur.clone());
                        if is_cpuset {
                            init_cpuset(&cur)?;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists && cur.is_dir() => {
                        // Reusing a leftover cgroup is fine (a crashed monitor leaves one), but
                        // a cgroup with processes means that container is running.
                        if cur == member.path
                            && !super::group::pids_in_tree(&member.path, true)?.is_empty()
                        {
                            return Err(CgroupError::InUse {
                                path: member.path.clone(),
                            });
                        }
                    }
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
                        ) =>
                    {
                        return Err(CgroupError::PermissionDenied { path: cur });
                    }
                    Err(source) => return Err(CgroupError::Create { path: cur, source }),
                }
            }
            if matches!(member.kind, MemberKind::Unified) && self.layout() == Layout::Unified {
                self.enable_controllers(&member.path);
            }
        }
        Ok(())
    }

    /// Enables every controller the kernel offers in `subtree_control` from the hierarchy's
    /// root down to the parent of `leaf`, so that limits can be set on `leaf`.
    ///
    /// Best effort: a cgroup that has processes of its own refuses (EBUSY, "no internal
    /// processes"); `apply` then reports the precise missing controller for the key that needs it.
    fn enable_controllers(&self, leaf: &Path) {
        let Some(u) = &self.unified else { return };
        let mut chain: Vec<PathBuf> = Vec::new();
        let mut cur = leaf.parent();
        while let Some(dir) = cur {
            if !dir.starts_with(&u.path) {
                break;
            }
            chain.push(dir.to_path_buf());
            if dir == u.path {
                break;
            }
            cur = dir.parent();
        }
        for dir in chain.iter().rev() {
            // A cgroup with processes of its own (a regular user's delegated cgroup, the caller's
            // with lxc.cgroup.relative) must get no controller at all: the threaded ones would be
            // accepted and turn it into a thread root, under which no process can be placed in
            // a domain cgroup (EOPNOTSUPP). The root is exempt from that rule.
            if *dir != u.path
                && read_pseudo(&dir.join("cgroup.procs"))
                    .map(|p| !p.trim().is_empty())
                    .unwrap_or(true)
            {
                return;
            }
            let Ok(available) = read_list(&dir.join("cgroup.controllers")) else {
                return;
            };
            let Ok(enabled) = read_list(&dir.join("cgroup.subtree_control")) else {
                return;
            };
            for c in available.iter().filter(|c| !enabled.contains(c)) {
                let _ = fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
            }
        }
    }
}

/// A new v1 cpuset cgroup starts with empty `cpuset.cpus`/`cpuset.mems`, and no task can join it
/// until they are set (ENOSPC): copy the parent's, as LXC does.
fn init_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        let current = match read_pseudo(&own) {
            Ok(s) => s,
            // A hierarchy mounted with noprefix, or a fake tree: nothing to initialise.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(CgroupError::Read { path: own, source }),
        };
        if !current.trim().is_empty() {
            continue;
        }
        let from = parent.join(file);
        let value = read_pseudo(&from).map_err(|source| CgroupError::Read {
            path: from.clone(),
            source,
        })?;
        let value = value.trim().to_string();
        fs::write(&own, &value).map_err(|source| CgroupError::Write {
            path: own.clone(),
            value,
            source,
        })?;
    }
    // what is made below it (the container's `.lxc`, the container's own cgroups) starts with
    // these CPUs and memory nodes, as LXC does: an empty cpuset takes no process
    // (never created: a fake tree in tests has no such file)
    if let Ok(mut f) = fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.clone_children"))
    {
        let _ = std::io::Write::write_all(&mut f, b"1");
    }
    Ok(())
}

/// /proc/self/cgroup, read now.
fn read_self_cgroup() -> Result<String, CgroupError> {
    let p = Path::new("/proc/self/cgroup");
    read_pseudo(p).map_err(|source| CgroupError::Read {
        path: p.to_path_buf(),
        source,
    })
}
