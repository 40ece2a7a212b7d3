//! Tests: mountinfo parsing for every layout, fake cgroup trees in a tempdir, and one real run
//! against this host's cgroups (skipped when not root or cgroups are not writable).

use std::fs;
use std::path::{Path, PathBuf};

use super::stats;
use super::*;
use crate::spec::CgroupSpec;

/// This very VM: every v1 controller in its own hierarchy, plus cgroup2 at unified.
const HYBRID: &str = "\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd,release_agent=/lib/systemd/systemd-cgroups-agent
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";

const UNIFIED: &str = "\
25 21 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw
26 25 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
27 25 0:23 / /mnt/again rw shared:4 - cgroup2 cgroup2 rw,nsdelegate
";

const LEGACY: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
";

/// Builds the mount points of `mountinfo` below a tempdir; `root_controllers` goes into the
/// cgroup2 root's cgroup.controllers.
fn fake(mountinfo: &str, root_controllers: &str) -> (tempfile::TempDir, Hierarchies) {
    let dir = tempfile::tempdir().expect("tempdir");
    for line in mountinfo.lines() {
        if line.contains(" - cgroup") {
            let mp = line.split(' ').nth(4).expect("mountpoint");
            let p = dir.path().join(mp.trim_start_matches('/'));
            fs::create_dir_all(&p).expect("mkdir");
            if line.contains(" - cgroup2 ") {
                fs::write(p.join("cgroup.controllers"), root_controllers).expect("write");
                fs::write(p.join("cgroup.subtree_control"), "").expect("write");
            }
        }
    }
    let h = Hierarchies::detect_from(mountinfo, Some(dir.path())).expect("detect");
    (dir, h)
}

fn p(root: &Path, rel: &str) -> PathBuf {
    root.join(rel)
}

fn spec(v1: &[(&str, &str)], v2: &[(&str, &str)]) -> CgroupSpec {
    CgroupSpec {
        v1: v1
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        v2: v2
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..CgroupSpec::default()
    }
}

#[test]
fn cgroup_names() {
    assert_eq!(
        payload_name(Path::new("/var/lib/lxc"), "c1"),
        "warren.payload.c1"
    );
    assert_eq!(
        payload_name(Path::new("/var/lib/lxc/"), "c1"),
        "warren.payload.c1"
    );
    assert_eq!(
        monitor_name(Path::new("/var/lib/lxc"), "c1"),
        "warren.monitor.c1"
    );
    let a = payload_name(Path::new("/srv/lxc"), "c1");
    let b = payload_name(Path::new("/srv/other"), "c1");
    assert!(a.starts_with("warren.payload.c1-") && a.len() == "warren.payload.c1-".len() + 8);
    assert_ne!(a, b);
    assert_eq!(a, payload_name(Path::new("/srv/lxc/"), "c1"));
    // FNV-1a 64 reference values.
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
}

#[test]
fn cgroup_detect_hybrid() {
    let h = Hierarchies::detect_from(HYBRID, Some(Path::new("/nonexistent"))).expect("detect");
    assert_eq!(h.layout(), Layout::Hybrid);
    let cpu = h.v1_for("cpuacct").expect("cpuacct");
    assert_eq!(cpu.controllers, vec!["cpu", "cpuacct"]);
    assert_eq!(cpu.mountpoint, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
    assert_eq!(
        cpu.path,
        Path::new("/nonexistent/sys/fs/cgroup/cpu,cpuacct")
    );
    assert_eq!(
        h.v1_for("cpuset").expect("cpuset").controllers,
        vec!["cpuset"]
    );
    let sd = h
        .v1()
        .iter()
        .find(|v| v.name.as_deref() == Some("systemd"))
        .expect("name=systemd");
    assert!(sd.controllers.is_empty());
    assert_eq!(h.v1().len(), 7);
    let u = h.unified().expect("unified");
    assert_eq!(u.mountpoint, Path::new("/sys/fs/cgroup/unified"));
    assert!(u.controllers.is_empty());
}

#[test]
fn cgroup_detect_unified_and_legacy() {
    let (_d, h) = fake(UNIFIED, "cpuset cpu io memory pids\n");
    assert_eq!(h.layout(), Layout::Unified);
    assert!(h.v1().is_empty());
    let u = h.unified().expect("unified");
    assert_eq!(u.mountpoint, Path::new("/sys/fs/cgroup"));
    assert_eq!(u.controllers, vec!["cpuset", "cpu", "io", "memory", "pids"]);

    let h = Hierarchies::detect_from(LEGACY, None).expect("detect");
    assert_eq!(h.layout(), Layout::Legacy);
    assert!(h.unified().is_none());
    assert_eq!(h.v1().len(), 4);

    // A named v1 hierarchy beside cgroup2 does not make the host hybrid.
    let mixed = format!(
        "{UNIFIED}40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
    );
    let (_d, h) = fake(&mixed, "memory");
    assert_eq!(h.layout(), Layout::Unified);
    assert_eq!(h.v1().len(), 1);

    assert!(matches!(
        Hierarchies::detect_from("1 0 0:1 / / rw - ext4 /dev/sda rw\n", None),
        Err(CgroupError::NoHierarchies(_))
    ));
}

#[test]
fn cgroup_mountinfo_escapes() {
    let mi = "41 31 0:38 / /tmp/with\\040space rw - cgroup2 cgroup2 rw\n";
    let h = Hierarchies::detect_from(mi, Some(Path::new("/x"))).expect("detect");
    assert_eq!(
        h.unified().expect("unified").mountpoint,
        Path::new("/tmp/with space")
    );
}

#[test]
fn cgroup_create_apply_remove_hybrid() {
    let (d, h) = fake(HYBRID, "hugetlb\n");
    let root = d.path().join("sys/fs/cgroup");
    let cg = h.create("warren.payload.c1").expect("create");
    let paths = cg.paths();
    assert_eq!(paths.len(), 8);
    for dir in [
        "cpu,cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "pids",
        "systemd",
        "unified",
    ] {
        assert!(p(&root, dir).join("warren.payload.c1").is_dir(), "{dir}");
    }
    assert_eq!(
        cg.unified_path(),
        Some(root.join("unified/warren.payload.c1"))
    );
    // Hybrid: the root's subtree_control is left alone.
    assert_eq!(
        fs::read_to_string(root.join("unified/cgroup.subtree_control")).expect("read"),
        ""
    );

    let mem = p(&root, "memory/warren.payload.c1");
    let cpu = p(&root, "cpu,cpuacct/warren.payload.c1");
    for f in [
        mem.join("memory.limit_in_bytes"),
        mem.join("memory.memsw.limit_in_bytes"),
        cpu.join("cpu.shares"),
    ] {
        fs::write(f, "").expect("touch");
    }
    cg.apply(&spec(
        &[
            ("memory.memsw.limit_in_bytes", "2G"),
            ("memory.limit_in_bytes", "1G"),
            ("cpu.shares", "512"),
        ],
        &[],
    ))
    .expect("apply v1");
    assert_eq!(
        fs::read_to_string(mem.join("memory.limit_in_bytes")).expect("r"),
        "1G"
    );
    assert_eq!(
        fs::read_to_string(cpu.join("cpu.shares")).expect("r"),
        "512"
    );

    // A cgroup2 key for a controller that is v1 here.
    let err = cg
        .apply(&spec(&[], &[("memory.max", "64M")]))
        .expect_err("memory.max on hybrid");
    let msg = err.to_string();
    assert!(msg.starts_with("lxc.cgroup2.memory.max: the memory controller is not available in the cgroup2 hierarchy of this hybrid"), "{msg}");
    assert!(
        msg.contains("use lxc.cgroup.memory.limit_in_bytes"),
        "{msg}"
    );

    // A v1 key whose controller isn't mounted at all.
    let err = cg
        .apply(&spec(&[("net_cls.classid", "1")], &[]))
        .expect_err("net_cls");
    assert!(
        err.to_string()
            .starts_with("lxc.cgroup.net_cls.classid: the net_cls controller is not available"),
        "{err}"
    );

    // The kernel (here: a missing file) refusing a write names key, value and errno.
    let err = cg
        .apply(&spec(&[("memory.bogus", "1")], &[]))
        .expect_err("bogus");
    let msg = err.to_string();
    assert!(
        msg.starts_with("lxc.cgroup.memory.bogus = 1: the kernel refused the write to")
            && msg.contains("No such file or directory"),
        "{msg}"
    );

    // Device rules go to the v1 devices hierarchy here: nothing unenforced.
    assert!(cg
        .unenforced(&spec(&[("devices.deny", "a")], &[]))
        .is_empty());

    // Reopen, then remove everywhere; removing again is fine.
    for f in [
        mem.join("memory.limit_in_bytes"),
        mem.join("memory.memsw.limit_in_bytes"),
        cpu.join("cpu.shares"),
    ] {
        fs::remove_file(f).expect("rm");
    }
    let again = h.open("warren.payload.c1").expect("open");
    assert_eq!(again.paths(), paths);
    again.remove().expect("remove");
    for path in &paths {
        assert!(!path.exists(), "{}", path.display());
    }
    cg.remove().expect("remove twice");
    assert!(matches!(
        h.open("warren.payload.c1"),
        Err(CgroupError::NotFound(_))
    ));
}

#[test]
fn cgroup_create_unified_enables_controllers() {
    let (d, h) = fake(UNIFIED, "memory pids cpu\n");
    let root = d.path().join("sys/fs/cgroup");
    let cg = h.create("warren.payload.c1").expect("create");
    // Only the first cgroup2 mount is used (the second is a bind of the same hierarchy).
    assert_eq!(cg.paths(), vec![root.join("warren.payload.c1")]);
    // The fake file keeps the last write only: one "+controller" per write(2).
    let sc = fs::read_to_string(root.join("cgroup.subtree_control")).expect("read");
    assert!(sc.starts_with('+'), "{sc:?}");

    let dir = root.join("warren.payload.c1");
    fs::write(dir.join("cgroup.controllers"), "memory pids\n").expect("w");
    fs::write(dir.join("memory.max"), "").expect("w");
    fs::write(dir.join("cgroup.max.descendants"), "").expect("w");
    cg.apply(&spec(
        &[],
        &[("memory.max", "64M"), ("cgroup.max.descendants", "5")],
    ))
    .expect("apply");
    assert_eq!(
        fs::read_to_string(dir.join("memory.max")).expect("r"),
        "64M"
    );

    let err = cg
        .apply(&spec(&[], &[("cpu.max", "1000 100000")]))
        .expect_err("cpu not enabled");
    assert!(
        err.to_string()
            .contains("cpu controller is offered by the kernel but is not enabled"),
        "{err}"
    );
    let err = cg
        .apply(&spec(&[], &[("io.max", "8:0 rbps=1")]))
        .expect_err("io not offered");
    assert!(
        err.to_string()
            .contains("not available in the cgroup2 hierarchy of this unified (cgroup2-only) host (available: memory pids cpu)"),
        "{err}"
    );
    let err = cg
        .apply(&spec(&[("memory.limit_in_bytes", "1G")], &[]))
        .expect_err("v1 key on v2");
    assert_eq!(
        err.to_string(),
        "lxc.cgroup.memory.limit_in_bytes: this is a cgroup v1 key, and this host is unified (cgroup2-only): use lxc.cgroup2.memory.max"
    );

    // Device rules cannot be enforced without BPF: skipped by apply, reported by unenforced.
    let devs = spec(&[("devices.deny", "a")], &[("devices.allow", "c 1:3 rwm")]);
    assert_eq!(
        cg.unenforced(&devs),
        vec!["lxc.cgroup.devices.deny", "lxc.cgroup2.devices.allow"]
    );
    cg.apply(&devs).expect("devices skipped");
}

#[test]
fn cgroup_legacy_has_no_cgroup2() {
    let (d, h) = fake(LEGACY, "");
    let cg = h.create("warren.payload.c1").expect("create");
    assert_eq!(cg.unified_path(), None);
    assert_eq!(
        cg.v1_path("cpu"),
        Some(d.path().join("sys/fs/cgroup/cpu,cpuacct/warren.payload.c1"))
    );
    let err = cg
        .apply(&spec(&[], &[("pids.max", "10")]))
        .expect_err("no cgroup2");
    assert_eq!(
        err.to_string(),
        "lxc.cgroup2.pids.max: this host has no cgroup2 hierarchy (legacy (cgroup v1-only)): use lxc.cgroup.pids.max"
    );
    // No freezer hierarchy, no cgroup2: freezing is unsupported, with a reason.
    assert!(matches!(cg.freeze(), Err(CgroupError::Unsupported(_))));
    cg.remove().expect("remove");
}

#[test]
fn cgroup_reuse_and_in_use() {
    let (d, h) = fake(HYBRID, "");
    let leftover = d.path().join("sys/fs/cgroup/memory/warren.payload.c1");
    fs::create_dir(&leftover).expect("mkdir");
    fs::write(leftover.join("cgroup.procs"), "").expect("w");
    let cg = h.create("warren.payload.c1").expect("reuse empty leftover");
    fs::write(leftover.join("cgroup.procs"), "4242\n").expect("w");
    let unified = cg.unified_path().expect("unified");
    fs::write(unified.join("cgroup.procs"), "7\n").expect("w");
    // procs come from the cgroup2 tree, which holds every process.
    assert_eq!(cg.procs().expect("procs"), vec![7]);
    let err = h.create("warren.payload.c1").expect_err("in use");
    assert!(matches!(err, CgroupError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("has processes"));
}

#[test]
fn cgroup_create_rolls_back() {
    let (d, h) = fake(HYBRID, "");
    // The cgroup2 mount (created last) is missing: creation fails there.
    fs::remove_dir_all(d.path().join("sys/fs/cgroup/unified")).expect("rm");
    let spec = CgroupSpec {
        dir: Some("outer/inner".into()),
        ..CgroupSpec::default()
    };
    let err = h.create_for(&spec, "ignored").expect_err("fails");
    assert!(matches!(err, CgroupError::Create { .. }), "{err}");
    for entry in fs::read_dir(d.path().join("sys/fs/cgroup")).expect("ls") {
        let dir = entry.expect("entry").path();
        assert!(
            !dir.join("outer").exists(),
            "left behind in {}",
            dir.display()
        );
    }
}

#[test]
fn cgroup_relative_and_dir_placement() {
    let (d, h) = fake(HYBRID, "");
    let root = d.path().join("sys/fs/cgroup");
    let self_cgroup = "\
9:name=systemd:/user.slice/session-1.scope
7:pids:/user.slice
4:memory:/process_api/abc
3:cpuset:/
2:cpuacct,cpu:/
5:devices:/
6:freezer:/
0::/user.slice/session-1.scope
";
    for dir in [
        "systemd/user.slice/session-1.scope",
        "pids/user.slice",
        "memory/process_api/abc",
        "unified/user.slice/session-1.scope",
    ] {
        fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    let h = h.with_self_cgroup(self_cgroup);
    let spec = CgroupSpec {
        relative: true,
        ..CgroupSpec::default()
    };
    let cg = h.create_for(&spec, "warren.payload.c1").expect("create");
    assert_eq!(
        cg.v1_path("memory"),
        Some(root.join("memory/process_api/abc/warren.payload.c1"))
    );
    assert_eq!(
        cg.v1_path("cpu"),
        Some(root.join("cpu,cpuacct/warren.payload.c1"))
    );
    assert_eq!(
        cg.unified_path(),
        Some(root.join("unified/user.slice/session-1.scope/warren.payload.c1"))
    );
    assert!(root
        .join("systemd/user.slice/session-1.scope/warren.payload.c1")
        .is_dir());
    cg.remove().expect("remove");
    assert!(root.join("memory/process_api/abc").is_dir());

    let spec = CgroupSpec {
        dir: Some("/custom/ct".into()),
        ..CgroupSpec::default()
    };
    let cg = h.create_for(&spec, "unused").expect("create dir");
    assert_eq!(cg.v1_path("pids"), Some(root.join("pids/custom/ct")));
    assert_eq!(cg.name(), "/custom/ct");
    assert!(h.open_for(&spec, "unused").is_ok());

    assert!(matches!(
        h.create("../escape"),
        Err(CgroupError::InvalidName { .. })
    ));
    assert!(matches!(
        h.create("/"),
        Err(CgroupError::InvalidName { .. })
    ));
}

#[test]
fn cgroup_stats_parsing() {
    assert_eq!(
        stats::parse_v2_cpu_ns("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n"),
        Some(1_500_000)
    );
    assert_eq!(stats::parse_v2_cpu_ns("user_usec 1\n"), None);
    assert_eq!(
        stats::parse_v2_kmem("anon 4096\nfile 0\nkernel 212992\nkernel_stack 16384\n"),
        Some(212_992)
    );
    assert_eq!(
        stats::parse_v2_kmem("anon 1\nkernel_stack 16384\npagetables 4096\nslab 100\n"),
        Some(16_384 + 4_096 + 100)
    );
    assert_eq!(stats::parse_v2_kmem("anon 1\n"), None);
    assert_eq!(
        stats::parse_v1_blkio_total(
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n"
        ),
        Some(12_288)
    );
    assert_eq!(stats::parse_v1_blkio_total("Total 0\n"), Some(0));
    assert_eq!(
        stats::parse_v2_io_bytes(
            "8:0 rbytes=100 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n253:0 rbytes=5 wbytes=0 rios=1 wios=0\n"
        ),
        125
    );
    assert!(stats::parse_v2_frozen("populated 1\nfrozen 1\n"));
    assert!(!stats::parse_v2_frozen("populated 1\nfrozen 0\n"));
}

#[test]
fn cgroup_stats_from_fake_trees() {
    let (d, h) = fake(HYBRID, "");
    let root = d.path().join("sys/fs/cgroup");
    let cg = h.create("warren.payload.c1").expect("create");
    let mem = root.join("memory/warren.payload.c1");
    fs::write(mem.join("memory.usage_in_bytes"), "557056\n").expect("w");
    fs::write(mem.join("memory.kmem.usage_in_bytes"), "212992\n").expect("w");
    fs::write(mem.join("memory.memsw.usage_in_bytes"), "600000\n").expect("w");
    fs::write(
        root.join("cpu,cpuacct/warren.payload.c1/cpuacct.usage"),
        "11965811\n",
    )
    .expect("w");
    assert_eq!(
        cg.stats(),
        CgroupStats {
            memory_bytes: Some(557_056),
            kmem_bytes: Some(212_992),
            swap_bytes: Some(600_000 - 557_056),
            cpu_ns: Some(11_965_811),
            blkio_bytes: None,
        }
    );

    let (d, h) = fake(UNIFIED, "memory io");
    let cg = h.create("warren.payload.c1").expect("create");
    let dir = d.path().join("sys/fs/cgroup/warren.payload.c1");
    fs::write(dir.join("memory.current"), "4096\n").expect("w");
    fs::write(dir.join("memory.stat"), "anon 0\nkernel 1024\n").expect("w");
    fs::write(dir.join("memory.swap.current"), "0\n").expect("w");
    fs::write(dir.join("cpu.stat"), "usage_usec 7\n").expect("w");
    fs::write(dir.join("io.stat"), "8:0 rbytes=1 wbytes=2\n").expect("w");
    fs::write(dir.join("cgroup.events"), "populated 0\nfrozen 1\n").expect("w");
    fs::write(dir.join("cgroup.freeze"), "0").expect("w");
    assert_eq!(
        cg.stats(),
        CgroupStats {
            memory_bytes: Some(4096),
            kmem_bytes: Some(1024),
            swap_bytes: Some(0),
            cpu_ns: Some(7000),
            blkio_bytes: Some(3),
        }
    );
    // The fake cgroup.events already says frozen: freeze writes 1 and sees it.
    cg.freeze().expect("freeze");
    assert_eq!(
        fs::read_to_string(dir.join("cgroup.freeze")).expect("r"),
        "1"
    );
    assert!(cg.is_frozen().expect("is_frozen"));
}

/// Removes the real test cgroup whatever happens (also on panic).
struct RealGuard {
    cg: ContainerCgroup,
    child: Option<std::process::Child>,
}

impl Drop for RealGuard {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
        }
        let _ = self.cg.thaw();
        let _ = self.cg.kill_all();
        if let Some(c) = self.child.as_mut() {
            let _ = c.wait();
        }
        let _ = self.cg.remove();
    }
}

/// The real thing, on this host: create, limit, attach, measure, freeze, kill, remove.
#[test]
fn cgroup_real_host_lifecycle() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: not root");
        return;
    }
    let h = match Hierarchies::detect() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let name = format!("warren.payload.test-{}", std::process::id());
    let cg = match h.create(&name) {
        Ok(cg) => cg,
        Err(CgroupError::PermissionDenied { path }) => {
            eprintln!("skipped: {} not writable", path.display());
            return;
        }
        Err(e) => panic!("create: {e}"),
    };
    let mut guard = RealGuard {
        cg: cg.clone(),
        child: None,
    };
    for p in cg.paths() {
        assert!(p.is_dir(), "{}", p.display());
    }

    // Limits, through whichever hierarchy this host has them in.
    let limits = match h.layout() {
        Layout::Unified => {
            // Only what the kernel offers: a host may delegate few controllers to cgroup2.
            let offered = h
                .unified()
                .map(|u| u.controllers.clone())
                .unwrap_or_default();
            let all = [("memory.max", "64M"), ("pids.max", "10")];
            let keys: Vec<_> = all
                .into_iter()
                .filter(|(k, _)| offered.iter().any(|c| k.starts_with(c.as_str())))
                .collect();
            spec(&[], &keys)
        }
        _ => spec(
            &[
                ("memory.limit_in_bytes", "64M"),
                ("pids.max", "10"),
                ("devices.deny", "a"),
                ("devices.allow", "c 1:3 rwm"),
            ],
            &[],
        ),
    };
    cg.apply(&limits).expect("apply");
    if let Some(mem) = cg.v1_path("memory") {
        assert_eq!(
            fs::read_to_string(mem.join("memory.limit_in_bytes"))
                .expect("read")
                .trim(),
            "67108864"
        );
    }
    if let Some(dev) = cg.v1_path("devices") {
        // deny a, then allow: only the one rule is left, which proves the order.
        assert_eq!(
            fs::read_to_string(dev.join("devices.list"))
                .expect("read")
                .trim(),
            "c 1:3 rwm"
        );
    }
    let bad_key = if h.layout() == Layout::Unified {
        spec(&[], &[("pids.max", "lots")])
    } else {
        spec(&[("pids.max", "lots")], &[])
    };
    let pids_available = match h.layout() {
        Layout::Unified => h
            .unified()
            .is_some_and(|u| u.controllers.iter().any(|c| c == "pids")),
        _ => h.v1_for("pids").is_some(),
    };
    if pids_available {
        let err = cg.apply(&bad_key).expect_err("pids.max = lots");
        assert!(
            err.to_string()
                .contains("pids.max = lots: the kernel refused")
                && err.to_string().contains("Invalid argument"),
            "{err}"
        );
    }
    if h.layout() == Layout::Hybrid && h.v1_for("memory").is_some() {
        let err = cg
            .apply(&spec(&[], &[("memory.max", "64M")]))
            .expect_err("memory.max on hybrid");
        assert!(
            err.to_string()
                .contains("it is a v1 controller here, mounted at /sys/fs/cgroup/memory"),
            "{err}"
        );
    }

    let child = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("spawn sleep");
    let pid = i32::try_from(child.id()).expect("pid");
    guard.child = Some(child);
    cg.attach(pid).expect("attach");
    assert_eq!(cg.procs().expect("procs"), vec![pid]);
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup of child");
    assert!(own.contains(&name), "{own}");

    let stats = cg.stats();
    let has_memory = match h.layout() {
        Layout::Unified => h
            .unified()
            .is_some_and(|u| u.controllers.iter().any(|c| c == "memory")),
        _ => h.v1_for("memory").is_some(),
    };
    assert_eq!(stats.memory_bytes.is_some(), has_memory, "{stats:?}");
    assert!(stats.cpu_ns.is_some(), "{stats:?}");

    cg.freeze().expect("freeze");
    assert!(cg.is_frozen().expect("is_frozen"));
    eprintln!("real host test: layout {:?}, stats {stats:?}", h.layout());
    cg.thaw().expect("thaw");
    assert!(!cg.is_frozen().expect("is_frozen"));

    // Frozen processes must die too.
    cg.freeze().expect("freeze again");
    cg.kill_all().expect("kill_all");
    if let Some(c) = guard.child.as_mut() {
        let status = c.wait().expect("wait");
        assert!(!status.success());
    }
    guard.child = None;
    assert!(cg.procs().expect("procs").is_empty());
    let _ = cg.thaw();
    cg.remove().expect("remove");
    for p in cg.paths() {
        assert!(!p.exists(), "{}", p.display());
    }
}
