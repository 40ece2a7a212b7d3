//! to_spec mapping, writer round trip, key editing and the shipped configs.

use std::path::{Path, PathBuf};
use warren_lxc_config::{
    install_shipped_configs, set_key_in_text, to_spec, Config, Error, ParseOptions,
};
use warren_runtime::spec::{CgroupAccess, NsKind, ProcMode, SysMode};

fn parse(text: &str) -> Config {
    Config::parse_str(
        text,
        Path::new("/var/lib/lxc/c1/config"),
        &ParseOptions::default(),
    )
    .unwrap()
}

fn spec(text: &str) -> Result<warren_runtime::spec::ContainerSpec, Error> {
    to_spec(&parse(text), "c1", Path::new("/var/lib/lxc"))
}

#[test]
fn defaults_are_lxcs() {
    let s = spec("").unwrap();
    assert_eq!(s.name, "c1");
    assert_eq!(s.rootfs.path, PathBuf::from("/var/lib/lxc/c1/rootfs"));
    assert!(s.rootfs.managed);
    assert_eq!(s.init.cmd, vec!["/sbin/init"]);
    assert_eq!(s.signals.halt, libc::SIGPWR);
    assert_eq!(s.signals.reboot, libc::SIGINT);
    assert_eq!(s.signals.stop, libc::SIGKILL);
    assert_eq!(
        s.namespaces.new,
        vec![
            NsKind::Mount,
            NsKind::Pid,
            NsKind::Uts,
            NsKind::Ipc,
            NsKind::Net,
            NsKind::Cgroup
        ]
    );
    assert!(s.autodev);
    assert!(s.console.enabled);
    assert_eq!(s.console.buffer_size, 128 * 1024);
    assert!(s.nets.is_empty());
    assert!(s.unenforced.is_empty());
    assert!(s.config_file.is_none(), "parsed from a string");
}

#[test]
fn hand_written_bb1_config() {
    let s = spec(
        "# hand-written config\n\
         lxc.rootfs.path = dir:/var/lib/lxc/bb1/rootfs\n\
         lxc.uts.name = bb1\nlxc.arch = x86_64\nlxc.signal.halt = SIGUSR1\nlxc.signal.reboot = SIGTERM\n\
         lxc.autodev = 1\nlxc.tty.max = 0\nlxc.pty.max = 16\nlxc.net.0.type = empty\n",
    )
    .unwrap();
    assert_eq!(s.rootfs.path, PathBuf::from("/var/lib/lxc/bb1/rootfs"));
    assert_eq!(s.hostname.as_deref(), Some("bb1"));
    assert_eq!(s.signals.halt, libc::SIGUSR1);
    assert_eq!(s.signals.reboot, libc::SIGTERM);
    assert_eq!((s.tty_max, s.pty_max), (0, 16));
    assert_eq!(s.nets.len(), 1);
    assert_eq!(s.nets[0].kind, "empty");
    assert!(s.namespaces.new.contains(&NsKind::Net));
    assert!(s.unenforced.is_empty(), "{:?}", s.unenforced);
}

#[test]
fn busybox_template_config() {
    let s = spec(
        "lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\nlxc.net.0.flags = up\n\
         lxc.apparmor.profile = generated\nlxc.apparmor.allow_nesting = 1\n\
         lxc.rootfs.path = dir:/var/lib/lxc/bbt/rootfs\nlxc.signal.halt = SIGUSR1\n\
         lxc.signal.reboot = SIGTERM\nlxc.uts.name = \"bbt\"\nlxc.autodev = 1\nlxc.tty.max = 5\n\
         lxc.pty.max = 1\nlxc.cap.drop = sys_module mac_admin mac_override sys_time\n\
         lxc.mount.auto = cgroup:mixed proc:mixed sys:ro\n\
         lxc.mount.entry = shm dev/shm tmpfs defaults,create=dir 0 0\n\
         lxc.mount.entry = mqueue dev/mqueue mqueue defaults,optional,create=dir 0 0\n\
         lxc.mount.entry = /lib lib none ro,bind 0 0\n",
    )
    .unwrap();
    assert_eq!(s.hostname.as_deref(), Some("bbt"));
    assert_eq!(s.mount_auto.proc, Some(ProcMode::Mixed));
    assert_eq!(s.mount_auto.sys, Some(SysMode::Ro));
    let cg = s.mount_auto.cgroup.unwrap();
    assert_eq!(
        (cg.access, cg.full, cg.force),
        (CgroupAccess::Mixed, false, false)
    );
    assert_eq!(s.mounts.len(), 3);
    assert_eq!(s.mounts[0].source, "shm");
    assert_eq!(s.mounts[0].target, PathBuf::from("dev/shm"));
    assert_eq!(s.mounts[0].fstype, "tmpfs");
    assert_eq!(s.mounts[0].options, vec!["defaults", "create=dir"]);
    assert_eq!(
        s.cap_drop,
        vec!["sys_module", "mac_admin", "mac_override", "sys_time"]
    );
    assert_eq!(s.nets[0].kind, "veth");
    assert_eq!(
        s.nets[0].keys[1],
        ("link".to_string(), "lxcbr0".to_string())
    );
    assert!(!s.unenforced.contains(&"lxc.cap.drop".to_string()));
    assert!(!s.unenforced.contains(&"lxc.net.0.type = veth".to_string()));
    assert!(!s.unenforced.contains(&"lxc.net.0.link".to_string()));
    assert!(!s.unenforced.iter().any(|u| u.contains("apparmor")));
}

#[test]
fn namespaces_idmaps_clone_keep_share_and_net_none() {
    let s = spec("lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n").unwrap();
    assert_eq!(s.namespaces.new[0], NsKind::User);
    assert_eq!(s.idmaps.len(), 2);
    assert!(s.idmaps[0].is_uid && !s.idmaps[1].is_uid);
    assert_eq!(s.idmaps[1].host_id, 100000);
    assert!(!s.unenforced.contains(&"lxc.idmap".to_string()));
    let s = spec("lxc.idmap = b 0 100000 65536\n").unwrap();
    assert_eq!(s.idmaps.len(), 2);

    let s = spec("lxc.namespace.clone = mnt pid\nlxc.namespace.clone = uts\n").unwrap();
    assert_eq!(
        s.namespaces.new,
        vec![NsKind::Mount, NsKind::Pid, NsKind::Uts]
    );
    let s = spec("lxc.namespace.keep = net ipc\n").unwrap();
    assert_eq!(
        s.namespaces.new,
        vec![NsKind::Mount, NsKind::Pid, NsKind::Uts, NsKind::Cgroup]
    );
    let e = spec("lxc.namespace.clone = mnt\nlxc.namespace.keep = net\n").unwrap_err();
    assert!(
        e.to_string()
            .contains(":2: invalid value \"net\" for lxc.namespace.keep"),
        "{e}"
    );

    let s = spec("lxc.namespace.share.net = 1234\n").unwrap();
    assert!(!s.namespaces.new.contains(&NsKind::Net));
    assert_eq!(s.namespaces.share, vec![(NsKind::Net, "1234".to_string())]);

    let s = spec("lxc.net.0.type = none\n").unwrap();
    assert!(!s.namespaces.new.contains(&NsKind::Net));
    assert!(s.unenforced.is_empty());
    assert!(spec("lxc.net.0.type = none\nlxc.net.1.type = empty\n").is_err());
    let e = spec("lxc.net.0.link = br0\n").unwrap_err();
    assert!(e.to_string().contains("has no lxc.net.0.type"), "{e}");

    let s = spec("lxc.time.offset.boot = 1h\n").unwrap();
    assert!(s.namespaces.new.contains(&NsKind::Time));
}

#[test]
fn mount_auto_defaults_follow_cap_sys_admin() {
    let s = spec("lxc.mount.auto = proc sys cgroup\n").unwrap();
    assert_eq!(s.mount_auto.proc, Some(ProcMode::Mixed));
    assert_eq!(s.mount_auto.sys, Some(SysMode::Mixed));
    assert_eq!(s.mount_auto.cgroup.unwrap().access, CgroupAccess::Rw);
    let s = spec("lxc.cap.drop = sys_admin\nlxc.mount.auto = cgroup-full:force\n").unwrap();
    let cg = s.mount_auto.cgroup.unwrap();
    assert_eq!(
        (cg.access, cg.full, cg.force),
        (CgroupAccess::Mixed, true, true)
    );
    // Later tokens replace earlier ones of the same kind; an empty value clears.
    let s = spec("lxc.mount.auto = proc:mixed sys:mixed\nlxc.mount.auto = sys:rw shmounts:/h\n")
        .unwrap();
    assert_eq!(s.mount_auto.sys, Some(SysMode::Rw));
    assert_eq!(s.mount_auto.proc, Some(ProcMode::Mixed));
    assert_eq!(
        s.mount_auto.shmounts,
        Some((PathBuf::from("/h"), PathBuf::from("/dev/.lxc-mounts")))
    );
    let s = spec("lxc.mount.auto = proc:mixed\nlxc.mount.auto =\n").unwrap();
    assert_eq!(s.mount_auto.proc, None);
}

#[test]
fn rootfs_console_cgroup_hooks_and_misc() {
    let s = spec(
        "lxc.rootfs.path = /srv/r\nlxc.rootfs.options = ro,nodev\nlxc.rootfs.mount = /mnt/r\n\
         lxc.console.buffer.size = auto\nlxc.console.size = 5000\nlxc.console.rotate = 1\n\
         lxc.console.logfile = /tmp/con.log\nlxc.cgroup2.memory.max = 1G\n\
         lxc.cgroup.memory.limit_in_bytes = 1G\nlxc.cgroup2.devices.allow = c 1:3 rwm\n\
         lxc.cgroup.dir = my/dir\nlxc.cgroup.relative = 1\n\
         lxc.hook.pre-start = /bin/a arg\nlxc.hook.mount = /bin/b\nlxc.hook.version = 1\n\
         lxc.init.cmd = /bin/sh -c   true\nlxc.init.uid = 5\nlxc.init.gid = 6\nlxc.init.groups = 1,2\n\
         lxc.init.cwd = /root\nlxc.environment = A=b=c\nlxc.ephemeral = 1\n\
         lxc.sysctl.net.ipv4.ip_forward = 1\nlxc.proc.oom_score_adj = 10\n\
         lxc.prlimit.nofile = 1024:unlimited\nlxc.no_new_privs = 1\n\
         lxc.seccomp.profile = /x.seccomp\nlxc.cap.keep = sys_admin\nlxc.signal.stop = RTMIN+3\n",
    )
    .unwrap();
    assert_eq!(s.rootfs.path, PathBuf::from("/srv/r"));
    assert_eq!(s.rootfs.options, vec!["ro", "nodev"]);
    assert_eq!(s.rootfs.mount, Some(PathBuf::from("/mnt/r")));
    assert_eq!(s.console.buffer_size, 128 * 1024);
    assert_eq!(s.console.log_size, 8192, "rounded up to a power of two");
    assert!(s.console.log_rotate);
    assert_eq!(
        s.cgroup.v2,
        vec![
            ("memory.max".to_string(), "1G".to_string()),
            ("devices.allow".to_string(), "c 1:3 rwm".to_string())
        ]
    );
    assert_eq!(
        s.cgroup.v1,
        vec![("memory.limit_in_bytes".to_string(), "1G".to_string())]
    );
    assert_eq!(s.cgroup.dir.as_deref(), Some("my/dir"));
    assert!(s.cgroup.relative);
    // enforced (eBPF device program) since the secure-defaults work
    assert!(!s
        .unenforced
        .contains(&"lxc.cgroup2.devices.allow".to_string()));
    assert_eq!(s.hooks.len(), 2);
    assert_eq!(s.hooks[0].command, "/bin/a arg");
    assert_eq!(s.hook_version, 1);
    assert_eq!(s.init.cmd, vec!["/bin/sh", "-c", "true"]);
    assert_eq!((s.init.uid, s.init.gid), (Some(5), Some(6)));
    assert_eq!(s.init.groups, vec![1, 2]);
    assert_eq!(s.environment, vec![("A".to_string(), "b=c".to_string())]);
    assert!(s.ephemeral);
    assert_eq!(
        s.sysctls,
        vec![("net.ipv4.ip_forward".to_string(), "1".to_string())]
    );
    assert_eq!(
        s.proc_writes,
        vec![("oom_score_adj".to_string(), "10".to_string())]
    );
    assert_eq!(s.prlimits[0].resource, "nofile");
    assert_eq!((s.prlimits[0].soft, s.prlimits[0].hard), (Some(1024), None));
    assert!(s.no_new_privs);
    assert_eq!(s.seccomp_profile, Some(PathBuf::from("/x.seccomp")));
    assert_eq!(s.cap_keep, vec!["sys_admin"]);
    assert_eq!(s.signals.stop, libc::SIGRTMIN() + 3);
    for k in [
        "lxc.sysctl.net.ipv4.ip_forward",
        "lxc.prlimit.nofile",
        "lxc.no_new_privs",
        "lxc.seccomp.profile",
        "lxc.cap.keep",
    ] {
        // enforced since the secure-defaults work: not listed as unenforced any more
        assert!(!s.unenforced.contains(&k.to_string()), "{k}");
    }
    let s = spec("lxc.console.path = none\nlxc.console.buffer.size = 0\n").unwrap();
    assert!(!s.console.enabled);
    assert_eq!(s.console.buffer_size, 0);
}

#[test]
fn non_dir_storage_is_refused_at_spec_time() {
    for (v, ty) in [
        ("overlay:/a:/b", "overlay"),
        ("btrfs:/x", "btrfs"),
        ("zfs:pool/x", "zfs"),
        ("lvm:/dev/vg/x", "lvm"),
        ("loop:/x.img", "loop"),
        ("nbd:/x.qcow2", "nbd"),
        ("rbd:pool/x", "rbd"),
    ] {
        let cfg = parse(&format!("lxc.uts.name = a\nlxc.rootfs.path = {v}\n"));
        let e = to_spec(&cfg, "c1", Path::new("/l")).unwrap_err();
        assert!(matches!(e, Error::Unsupported { line: 2, .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains(&format!("\"{ty}\" is not supported yet")),
            "{e}"
        );
    }
}

#[test]
fn fstab_relative_to_config_dir() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("fstab"),
        "# comment\nproc proc proc nodev,noexec,nosuid 0 0\n\n/a\\040b mnt/x none bind 0 0\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("config"),
        "lxc.mount.entry = tmpfs tmp tmpfs defaults\nlxc.mount.fstab = fstab\n",
    )
    .unwrap();
    let cfg = Config::load(&d.path().join("config")).unwrap();
    let s = to_spec(&cfg, "c1", d.path()).unwrap();
    assert_eq!(s.config_file, Some(d.path().join("config")));
    let srcs: Vec<&str> = s.mounts.iter().map(|m| m.source.as_str()).collect();
    assert_eq!(
        srcs,
        vec!["proc", "/a b", "tmpfs"],
        "fstab first, as LXC mounts it"
    );
    std::fs::write(d.path().join("fstab"), "proc proc\n").unwrap();
    let e = to_spec(&cfg, "c1", d.path()).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}:1: invalid value \"proc proc\" for lxc.mount.fstab",
            d.path().join("fstab").display()
        )),
        "{e}"
    );
    std::fs::remove_file(d.path().join("fstab")).unwrap();
    let e = to_spec(&cfg, "c1", d.path()).unwrap_err();
    assert!(matches!(e, Error::ReadFile { line: 2, .. }), "{e:?}");
}

#[test]
fn writer_round_trip() {
    let text = "# top comment\n\nlxc.uts.name = \"bbt\"\nlxc.include = /usr/share/warren/config/common.conf\n\
                lxc.mount.entry = /lib lib none ro,bind 0 0\nfoo = bar\nlxc.init.cmd = '  padded '\n\
                lxc.environment = Q=\"x\"\n";
    let c = parse(text);
    let with = c.to_text(true);
    assert!(
        with.starts_with("# top comment\n\nlxc.uts.name = bbt\n"),
        "{with}"
    );
    assert!(with.contains("foo = bar\n"));
    assert!(with.contains("lxc.init.cmd = \"  padded \"\n"));
    let without = c.to_text(false);
    assert!(!without.contains('#') && !without.contains("foo"));
    for t in [with, without] {
        let c2 = parse(&t);
        let a: Vec<(&str, &str)> = c
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        let b: Vec<(&str, &str)> = c2
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(a, b);
    }
    assert_eq!(
        warren_lxc_config::render_settings([("lxc.uts.name", "a"), ("lxc.tty.max", "4")]),
        "lxc.uts.name = a\nlxc.tty.max = 4\n"
    );
    let d = tempfile::tempdir().unwrap();
    c.save(&d.path().join("config")).unwrap();
    let c3 = Config::load(&d.path().join("config")).unwrap();
    assert_eq!(c3.entries.len(), c.entries.len());
}

#[test]
fn edit_one_key_keeps_the_rest() {
    let text = "# keep me\nlxc.uts.name = old\nlxc.tty.max = 4\n  lxc.uts.name=older\n#lxc.uts.name = commented\n";
    let out = set_key_in_text(text, "lxc.uts.name", Some("new")).unwrap();
    assert_eq!(
        out,
        "# keep me\nlxc.uts.name = new\nlxc.tty.max = 4\n#lxc.uts.name = commented\n"
    );
    let out = set_key_in_text(text, "lxc.start.auto", Some("1")).unwrap();
    assert!(out.ends_with("#lxc.uts.name = commented\nlxc.start.auto = 1\n"));
    let out = set_key_in_text(text, "lxc.uts.name", None).unwrap();
    assert_eq!(
        out,
        "# keep me\nlxc.tty.max = 4\n#lxc.uts.name = commented\n"
    );
    assert!(set_key_in_text(text, "lxc.bogus", Some("1")).is_err());
    assert!(set_key_in_text(text, "lxc.tty.max", Some("x")).is_err());
    assert!(matches!(
        set_key_in_text(text, "lxc.utsname", Some("x")).unwrap_err(),
        Error::LegacyKey { .. }
    ));

    let mut c =
        parse("# c\nlxc.cap.drop = sys_time\nlxc.uts.name = a\nlxc.cap.drop = sys_module\n");
    c.set("lxc.cap.drop", "mac_admin").unwrap();
    c.set("lxc.start.auto", "1").unwrap();
    assert_eq!(c.get("lxc.cap.drop").as_deref(), Some("mac_admin"));
    assert_eq!(
        c.to_text(true),
        "# c\nlxc.cap.drop = mac_admin\nlxc.uts.name = a\nlxc.start.auto = 1\n"
    );
    c.set("lxc.uts.name", "").unwrap();
    assert!(c.get("lxc.uts.name").is_none());
    assert!(c.set("lxc.tty.max", "nope").is_err());
}

#[test]
fn get_prints_like_lxc_info() {
    let c = parse("lxc.rootfs.path = dir:/var/lib/lxc/bbnet/rootfs\nlxc.uts.name = bbnet\nlxc.mount.entry = a b c\nlxc.mount.entry = d e f\n");
    assert_eq!(
        c.get("lxc.rootfs.path").as_deref(),
        Some("/var/lib/lxc/bbnet/rootfs")
    );
    assert_eq!(c.get("lxc.uts.name").as_deref(), Some("bbnet"));
    assert_eq!(c.get("lxc.mount.entry").as_deref(), Some("a b c\nd e f"));
    assert_eq!(c.get("lxc.tty.max"), None);
}

#[test]
fn shipped_configs_parse_map_and_install() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("cfg");
    install_shipped_configs(&dir).unwrap();
    for (name, content) in warren_lxc_config::SHIPPED_CONFIGS {
        assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), content);
    }
    // Unchanged files are not rewritten; changed ones are restored.
    let common = dir.join("common.conf");
    let before = std::fs::metadata(&common).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(dir.join("userns.conf"), "changed").unwrap();
    install_shipped_configs(&dir).unwrap();
    assert_eq!(
        std::fs::metadata(&common).unwrap().modified().unwrap(),
        before
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("userns.conf")).unwrap(),
        warren_lxc_config::embedded_config("userns.conf").unwrap()
    );

    // The shipped configs, read from the installed copy: no warnings, no hooks, valid spec.
    let opts = ParseOptions {
        include_redirect: vec![(
            PathBuf::from(warren_lxc_config::WARREN_CONFIG_DIR),
            dir.clone(),
        )],
        use_embedded: false,
    };
    let c = Config::parse_str(
        "lxc.include = /usr/share/warren/config/common.conf\nlxc.idmap = u 0 100000 65536\n\
         lxc.idmap = g 0 100000 65536\nlxc.include = /usr/share/warren/config/userns.conf\n",
        Path::new("/l/c1/config"),
        &opts,
    )
    .unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(!c.entries.iter().any(|e| e.key.starts_with("lxc.hook")));
    let s = to_spec(&c, "c1", Path::new("/l")).unwrap();
    assert_eq!((s.tty_max, s.pty_max), (4, 1024));
    // unlike LXC's userns.conf, warren's keeps /sys read-only (systemd and a writable /sys)
    assert_eq!(s.mount_auto.sys, Some(SysMode::Mixed));
    assert_eq!(s.mount_auto.proc, Some(ProcMode::Mixed));
    assert!(s.cap_drop.is_empty());
    assert_eq!(
        s.seccomp_profile,
        Some(PathBuf::from("/usr/share/warren/config/common.seccomp"))
    );
    assert_eq!(s.namespaces.new[0], NsKind::User);
    assert_eq!(s.mounts.len(), 3);
    let seccomp = warren_lxc_config::embedded_config("common.seccomp").unwrap();
    assert!(seccomp.starts_with("2\ndenylist\n"));
    for sc in [
        "kexec_load",
        "open_by_handle_at",
        "init_module",
        "finit_module",
        "delete_module",
        "keyctl errno 38",
    ] {
        assert!(seccomp.contains(sc), "{sc}");
    }
}
