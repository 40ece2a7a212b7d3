//! Parser tests: syntax, includes, resets, indexed net keys, errors and warnings.

use std::path::{Path, PathBuf};
use warren_lxc_config::{Config, Error, ParseOptions};

fn parse(text: &str) -> Result<Config, Error> {
    Config::parse_str(text, Path::new("/test/config"), &ParseOptions::default())
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn syntax_spaces_quotes_comments_and_lines() {
    let c = parse(
        "# a comment\n\
         \n\
         lxc.uts.name = \"bbt\"\n\
         lxc.init.cmd='/bin/sh -c x'\n\
         \t  lxc.tty.max=5   \n\
         lxc.log.file = /var/log/a#b\n\
         lxc.arch = \"x86_64\n\
         \x20\x20# indented comment\n",
    );
    let err = c.unwrap_err().to_string();
    // An unmatched quote is kept, so the arch is invalid: proves quotes are only stripped in pairs.
    assert!(
        err.contains("/test/config:7: invalid value \"\"x86_64\" for lxc.arch"),
        "{err}"
    );

    let c = parse(
        "# a comment\n\nlxc.uts.name = \"bbt\"\nlxc.init.cmd='/bin/sh -c x'\n\t  lxc.tty.max=5   \nlxc.log.file = /var/log/a#b\n",
    )
    .unwrap();
    assert_eq!(c.get("lxc.uts.name").as_deref(), Some("bbt"));
    assert_eq!(c.get("lxc.init.cmd").as_deref(), Some("/bin/sh -c x"));
    assert_eq!(c.get("lxc.tty.max").as_deref(), Some("5"));
    // '#' inside a value is not a comment.
    assert_eq!(c.get("lxc.log.file").as_deref(), Some("/var/log/a#b"));
    let lines: Vec<usize> = c.entries.iter().map(|e| e.source.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6]);
    assert!(c
        .entries
        .iter()
        .all(|e| e.source.file == Path::new("/test/config")));
    assert!(c.warnings.is_empty());
}

#[test]
fn scalar_keys_replace_list_keys_accumulate() {
    let c = parse(
        "lxc.uts.name = a\nlxc.uts.name = b\nlxc.cap.drop = sys_time\nlxc.cap.drop = sys_module mac_admin\n",
    )
    .unwrap();
    assert_eq!(c.get_all("lxc.uts.name").count(), 1);
    assert_eq!(c.get("lxc.uts.name").as_deref(), Some("b"));
    assert_eq!(
        c.get("lxc.cap.drop").as_deref(),
        Some("sys_time sys_module mac_admin")
    );
}

#[test]
fn empty_value_resets_list_keys() {
    let c = parse(
        "lxc.mount.entry = proc proc proc defaults 0 0\n\
         lxc.mount.entry =\n\
         lxc.mount.entry = tmpfs tmp tmpfs defaults 0 0\n\
         lxc.cap.drop = sys_time\n\
         lxc.cap.drop =\n\
         lxc.hook.mount = /bin/a\n\
         lxc.hook.start = /bin/b\n\
         lxc.hook.mount =\n\
         lxc.cgroup.devices.allow = c 1:3 rwm\n\
         lxc.cgroup.devices.deny = a\n\
         lxc.cgroup.devices.allow =\n\
         lxc.cgroup2.memory.max = 1G\n\
         lxc.idmap = u 0 100000 65536\n\
         lxc.idmap =\n\
         lxc.environment = A=1\n\
         lxc.environment =\n\
         lxc.uts.name = x\n\
         lxc.uts.name =\n",
    )
    .unwrap();
    let mounts: Vec<&str> = c
        .get_all("lxc.mount.entry")
        .map(|e| e.value.as_str())
        .collect();
    assert_eq!(mounts, vec!["tmpfs tmp tmpfs defaults 0 0"]);
    assert!(c.get("lxc.cap.drop").is_none());
    assert!(c.get("lxc.hook.mount").is_none());
    assert_eq!(c.get("lxc.hook.start").as_deref(), Some("/bin/b"));
    assert!(c.get("lxc.cgroup.devices.allow").is_none());
    assert_eq!(c.get("lxc.cgroup.devices.deny").as_deref(), Some("a"));
    assert_eq!(c.get("lxc.cgroup2.memory.max").as_deref(), Some("1G"));
    assert!(c.get("lxc.idmap").is_none());
    assert!(c.get("lxc.environment").is_none());
    assert!(c.get("lxc.uts.name").is_none());
}

#[test]
fn bare_family_resets() {
    let c = parse(
        "lxc.hook.mount = /a\nlxc.hook.start = /b\nlxc.hook.version = 1\nlxc.hook =\n\
         lxc.cgroup.memory.limit_in_bytes = 1\nlxc.cgroup.dir = d\nlxc.cgroup2.pids.max = 5\nlxc.cgroup =\n\
         lxc.sysctl.net.ipv4.ip_forward = 1\nlxc.sysctl =\n",
    )
    .unwrap();
    assert!(c.get("lxc.hook.mount").is_none() && c.get("lxc.hook.start").is_none());
    assert_eq!(c.get("lxc.hook.version").as_deref(), Some("1"));
    assert!(c.get("lxc.cgroup.memory.limit_in_bytes").is_none());
    // lxc.cgroup = clears v1 settings only, not lxc.cgroup.dir nor cgroup2.
    assert_eq!(c.get("lxc.cgroup.dir").as_deref(), Some("d"));
    assert_eq!(c.get("lxc.cgroup2.pids.max").as_deref(), Some("5"));
    assert!(c.get("lxc.sysctl.net.ipv4.ip_forward").is_none());
    let e = err("lxc.hook = /bin/true\n");
    assert!(
        e.contains("/test/config:1: invalid value \"/bin/true\" for lxc.hook"),
        "{e}"
    );
}

#[test]
fn indexed_net_keys() {
    let c = parse(
        "lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\nlxc.net.0.flags = up\n\
         lxc.net.0.ipv4.address = 10.0.3.5/24\nlxc.net.0.ipv4.address = 10.0.3.6/24 10.0.3.255\n\
         lxc.net.1.type = empty\nlxc.net.2.type = macvlan\nlxc.net.2.macvlan.mode = bridge\n\
         lxc.net.2 =\n",
    )
    .unwrap();
    assert_eq!(c.get("lxc.net.0.type").as_deref(), Some("veth"));
    assert_eq!(c.get_all("lxc.net.0.ipv4.address").count(), 2);
    assert_eq!(c.get("lxc.net.1.type").as_deref(), Some("empty"));
    assert!(c.get("lxc.net.2.type").is_none() && c.get("lxc.net.2.macvlan.mode").is_none());
    let c = parse("lxc.net.0.type = veth\nlxc.net.1.type = empty\nlxc.net =\nlxc.uts.name = a\n")
        .unwrap();
    assert!(c.entries.iter().all(|e| !e.key.starts_with("lxc.net")));
    assert!(err("lxc.net.x.type = veth\n").contains("unknown key \"lxc.net.x.type\""));
    assert!(err("lxc.net.0.nope = 1\n").contains("unknown key \"lxc.net.0.nope\""));
    assert!(err("lxc.net.0.type = bogus\n").contains("invalid value \"bogus\" for lxc.net.0.type"));
    assert!(err("lxc.net = 1\n").contains("invalid value \"1\" for lxc.net"));
}

#[test]
fn unknown_key_error() {
    assert_eq!(
        err("lxc.uts.name = a\n\nlxc.foo.bar = 1\n"),
        "/test/config:3: unknown key \"lxc.foo.bar\""
    );
    assert_eq!(
        err("lxc.hook.bogus = /x\n"),
        "/test/config:1: unknown key \"lxc.hook.bogus\""
    );
    assert_eq!(
        err("lxc.prlimit.bogus = 1\n"),
        "/test/config:1: unknown key \"lxc.prlimit.bogus\""
    );
    assert_eq!(
        err("lxc.namespace.share.bogus = 1\n"),
        "/test/config:1: unknown key \"lxc.namespace.share.bogus\""
    );
}

#[test]
fn bad_value_errors() {
    assert_eq!(
        err("lxc.autodev = yes\n"),
        "/test/config:1: invalid value \"yes\" for lxc.autodev: expected 0 or 1"
    );
    let cases = [
        "lxc.tty.max = -1",
        "lxc.signal.halt = SIGNOPE",
        "lxc.signal.halt = RTMIN+999",
        "lxc.signal.stop = 0",
        "lxc.idmap = x 0 1 1",
        "lxc.idmap = u 0 100000",
        "lxc.idmap = u 0 100000 0",
        "lxc.mount.auto = proc:ro",
        "lxc.mount.auto = cgroup:bogus",
        "lxc.mount.entry = onlyone",
        "lxc.mount.entry = a b c d x",
        "lxc.namespace.clone = mnt bogus",
        "lxc.console.path = relative",
        "lxc.arch = vax",
        "lxc.cap.drop = sys_bogus",
        "lxc.console.buffer.size = 12q",
        "lxc.rootfs.path = weird:thing",
        "lxc.rootfs.options = ro,create=dir",
        "lxc.init.groups = 1,x",
        "lxc.prlimit.nofile = lots",
        "lxc.hook.version = 2",
        "lxc.log.level = LOUD",
        "lxc.net.0.hwaddr = 00:16:3e:zz:00:00",
        "lxc.net.0.ipv4.address = 10.0.0.300/24",
        "lxc.net.0.ipv6.address = fe80::1/129",
        "lxc.net.0.vlan.id = 5000",
        "lxc.environment = =x",
        "lxc.time.offset.boot = 5 days",
        "lxc.mount.fstab =",
    ];
    for c in cases {
        let e = err(&format!("{c}\n"));
        assert!(e.starts_with("/test/config:1: invalid value"), "{c}: {e}");
    }
}

#[test]
fn good_values_accepted() {
    let cases = [
        "lxc.signal.halt = SIGPWR",
        "lxc.signal.halt = PWR",
        "lxc.signal.halt = sigusr1",
        "lxc.signal.reboot = RTMIN+3",
        "lxc.signal.stop = 9",
        "lxc.idmap = b 0 100000 65536",
        "lxc.mount.auto = proc:rw sys:ro cgroup-full:rw:force shmounts:/h:/c",
        "lxc.mount.auto = proc sys cgroup cgroup:mixed:force",
        "lxc.mount.entry = /lib lib none ro,bind 0 0",
        "lxc.mount.entry = tmpfs tmp tmpfs",
        "lxc.namespace.clone = mnt pid uts ipc net user cgroup time",
        "lxc.console.path = none",
        "lxc.console.buffer.size = auto",
        "lxc.console.size = 1MB",
        "lxc.arch = amd64",
        "lxc.arch = armhf",
        "lxc.cap.drop = CAP_SYS_ADMIN sys_module 21",
        "lxc.cap.keep = none",
        "lxc.rootfs.path = /var/lib/lxc/c/rootfs",
        "lxc.rootfs.path = overlay:/a:/b",
        "lxc.prlimit.nofile = 1024:unlimited",
        "lxc.log.level = warn",
        "lxc.log.level = 3",
        "lxc.net.0.hwaddr = 00:16:3e:xx:xx:xx",
        "lxc.net.0.ipv4.gateway = auto",
        "lxc.net.0.ipv6.address = fd00::2/64",
        "lxc.net.0.veth.vlan.id = none",
        "lxc.environment = PATH",
        "lxc.time.offset.boot = -5h",
        "lxc.sysctl.net.ipv4.ip_forward = 1",
        "lxc.proc.oom_score_adj = 10",
        "lxc.namespace.share.net = /proc/1/ns/net",
        "lxc.cgroup.dir.container.inner = inner",
        "lxc.seccomp.notify.proxy = unix:/run/p.sock",
    ];
    for c in cases {
        parse(&format!("{c}\n")).unwrap_or_else(|e| panic!("{c}: {e}"));
    }
}

#[test]
fn legacy_keys_name_their_replacement() {
    assert_eq!(
        err("lxc.network.0.ipv4 = 10.0.0.2/24\n"),
        "/test/config:1: \"lxc.network.0.ipv4\" is a pre-3.0 key; use \"lxc.net.0.ipv4.address\" instead"
    );
    let pairs = [
        ("lxc.utsname", "lxc.uts.name"),
        ("lxc.id_map", "lxc.idmap"),
        ("lxc.rootfs", "lxc.rootfs.path"),
        ("lxc.tty", "lxc.tty.max"),
        ("lxc.pts", "lxc.pty.max"),
        ("lxc.loglevel", "lxc.log.level"),
        ("lxc.logfile", "lxc.log.file"),
        ("lxc.init_cmd", "lxc.init.cmd"),
        ("lxc.init_uid", "lxc.init.uid"),
        ("lxc.init_gid", "lxc.init.gid"),
        ("lxc.limit.nofile", "lxc.prlimit.nofile"),
        ("lxc.haltsignal", "lxc.signal.halt"),
        ("lxc.rebootsignal", "lxc.signal.reboot"),
        ("lxc.stopsignal", "lxc.signal.stop"),
        ("lxc.syslog", "lxc.log.syslog"),
        ("lxc.aa_profile", "lxc.apparmor.profile"),
        ("lxc.aa_allow_incomplete", "lxc.apparmor.allow_incomplete"),
        ("lxc.se_context", "lxc.selinux.context"),
        ("lxc.console", "lxc.console.path"),
        ("lxc.seccomp", "lxc.seccomp.profile"),
        ("lxc.devttydir", "lxc.tty.dir"),
        ("lxc.mount", "lxc.mount.fstab"),
        ("lxc.rootfs.backend", "lxc.rootfs.path"),
        ("lxc.network.1.link", "lxc.net.1.link"),
        ("lxc.network.0.ipv6", "lxc.net.0.ipv6.address"),
        ("lxc.network.0.ipv4.gateway", "lxc.net.0.ipv4.gateway"),
        ("lxc.network.type", "lxc.net.0.type"),
        ("lxc.network", "lxc.net"),
        ("lxc.net.0.ipv4", "lxc.net.0.ipv4.address"),
    ];
    for (old, new) in pairs {
        let e = err(&format!("{old} = 1\n"));
        assert_eq!(
            e,
            format!("/test/config:1: \"{old}\" is a pre-3.0 key; use \"{new}\" instead")
        );
    }
    // Unindexed network keys are numbered like lxc-update-config does.
    let e = err("lxc.net.0.type = veth\nlxc.network.type = veth\n");
    assert!(e.contains("use \"lxc.net.1.type\""), "{e}");
    let e = err("lxc.net.0.type = veth\nlxc.network.link = br0\n");
    assert!(e.contains("use \"lxc.net.0.link\""), "{e}");
    assert_eq!(
        err("lxc.pivotdir = x\n"),
        "/test/config:1: \"lxc.pivotdir\" is a pre-3.0 key that LXC 3.0 removed; delete the line"
    );
    assert!(err("lxc.kmsg = 0\n").contains("removed"));
}

#[test]
fn syntax_error_and_ignored_lines() {
    let e = err("lxc.uts.name a\n");
    assert!(
        e.starts_with("/test/config:1: syntax error in \"lxc.uts.name a\""),
        "{e}"
    );
    let c = parse("foo = bar\nlxc.uts.name = a\n").unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0]
        .to_string()
        .starts_with("/test/config:1: ignored line"));
}

#[test]
fn unsupported_on_host_keys_warn() {
    let c = parse("lxc.apparmor.profile = generated\nlxc.apparmor.allow_nesting = 1\nlxc.selinux.context = x\n")
        .unwrap();
    assert_eq!(c.warnings.len(), 3);
    assert_eq!(c.warnings[1].line, 2);
    assert!(c.warnings[0].message.contains("lxc.apparmor.profile"));
}

fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

#[test]
fn include_file_and_directory() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    write(
        &root.join("base.conf"),
        "# base\nlxc.tty.max = 2\nlxc.cap.drop = sys_time\n",
    );
    write(&root.join("snip/20-b.conf"), "lxc.cap.drop = sys_module\n");
    write(&root.join("snip/10-a.conf"), "lxc.cap.drop = mac_admin\n");
    write(&root.join("snip/ignored.txt"), "lxc.bogus = 1\n");
    write(&root.join("snip/.conf"), "lxc.bogus = 1\n");
    write(
        &root.join("c/config"),
        "lxc.include = ../base.conf\nlxc.include = ROOT/snip\nlxc.include = ROOT/missing.d/\nlxc.tty.max = 7\n"
            .replace("ROOT", root.to_str().unwrap())
            .as_str(),
    );
    let c = Config::load(&root.join("c/config")).unwrap();
    assert!(c.from_disk);
    assert_eq!(c.get("lxc.tty.max").as_deref(), Some("7"));
    assert_eq!(
        c.get("lxc.cap.drop").as_deref(),
        Some("sys_time mac_admin sys_module")
    );
    let drop: Vec<_> = c.get_all("lxc.cap.drop").collect();
    assert_eq!(drop[0].source.file, root.join("c/../base.conf"));
    assert_eq!(drop[0].source.line, 3);
    assert_eq!(drop[1].source.file, root.join("snip/10-a.conf"));
    assert_eq!(drop[1].source.line, 1);
    // The include lines themselves are kept for the writer, not expanded.
    assert!(c.to_text(false).starts_with("lxc.include = ../base.conf\n"));
}

#[test]
fn missing_include_names_including_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("config");
    write(
        &cfg,
        "lxc.uts.name = a\nlxc.include = /nonexistent/x.conf\n",
    );
    let e = Config::load(&cfg).unwrap_err();
    assert!(matches!(e, Error::ReadFile { line: 2, .. }), "{e:?}");
    let s = e.to_string();
    assert!(
        s.starts_with(&format!(
            "{}:2: lxc.include: cannot read /nonexistent/x.conf",
            cfg.display()
        )),
        "{s}"
    );
    // A missing directory without the trailing slash is an error too.
    write(&cfg, "lxc.include = /nonexistent/dir\n");
    assert!(Config::load(&cfg).is_err());
    // Error in an included file names that file.
    write(&d.path().join("bad.conf"), "\nlxc.nope = 1\n");
    write(&cfg, "lxc.include = bad.conf\n");
    let s = Config::load(&cfg).unwrap_err().to_string();
    assert_eq!(
        s,
        format!(
            "{}:2: unknown key \"lxc.nope\"",
            d.path().join("bad.conf").display()
        )
    );
}

#[test]
fn include_loop_is_refused() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.conf"), "lxc.include = b.conf\n");
    write(
        &d.path().join("b.conf"),
        "lxc.tty.max = 1\nlxc.include = a.conf\n",
    );
    let e = Config::load(&d.path().join("a.conf")).unwrap_err();
    assert!(matches!(e, Error::IncludeLoop { line: 2, .. }), "{e:?}");
    assert!(e.to_string().contains("include loop"));
    // Self include.
    write(&d.path().join("self.conf"), "lxc.include = self.conf\n");
    assert!(matches!(
        Config::load(&d.path().join("self.conf")).unwrap_err(),
        Error::IncludeLoop { line: 1, .. }
    ));
    // Including the same file twice (not nested) is fine.
    write(&d.path().join("leaf.conf"), "lxc.cap.drop = sys_time\n");
    write(
        &d.path().join("twice.conf"),
        "lxc.include = leaf.conf\nlxc.include = leaf.conf\n",
    );
    let c = Config::load(&d.path().join("twice.conf")).unwrap();
    assert_eq!(c.get_all("lxc.cap.drop").count(), 2);
}

#[test]
fn include_redirect_and_embedded_configs() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("pkg/common.conf"), "lxc.tty.max = 9\n");
    let opts = ParseOptions {
        include_redirect: vec![(PathBuf::from("/usr/share/lxc/config"), d.path().join("pkg"))],
        ..ParseOptions::default()
    };
    let c = Config::parse_str(
        "lxc.include = /usr/share/lxc/config/common.conf\n",
        Path::new("/x/config"),
        &opts,
    )
    .unwrap();
    assert_eq!(c.get("lxc.tty.max").as_deref(), Some("9"));

    // warren's own common.conf is used from the library when not installed.
    if !Path::new(warren_lxc_config::WARREN_CONFIG_DIR).exists() {
        let c = parse("lxc.include = /usr/share/warren/config/common.conf\nlxc.include = /usr/share/warren/config/userns.conf\n").unwrap();
        assert_eq!(c.get("lxc.pty.max").as_deref(), Some("1024"));
        assert!(
            c.get("lxc.cap.drop").is_none(),
            "userns.conf clears cap.drop"
        );
        assert_eq!(
            c.get("lxc.mount.auto").as_deref(),
            Some("cgroup:mixed proc:mixed sys:mixed sys:rw")
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let no_embedded = ParseOptions {
            use_embedded: false,
            ..ParseOptions::default()
        };
        assert!(Config::parse_str(
            "lxc.include = /usr/share/warren/config/common.conf\n",
            Path::new("/x/config"),
            &no_embedded
        )
        .is_err());
    }
}

#[test]
fn every_documented_key_is_known() {
    let keys = [
        "lxc.arch",
        "lxc.apparmor.profile",
        "lxc.apparmor.allow_incomplete",
        "lxc.apparmor.allow_nesting",
        "lxc.apparmor.raw",
        "lxc.autodev",
        "lxc.autodev.tmpfs.size",
        "lxc.cap.drop",
        "lxc.cap.keep",
        "lxc.cgroup.memory.max",
        "lxc.cgroup2.memory.max",
        "lxc.cgroup.dir",
        "lxc.cgroup.dir.container",
        "lxc.cgroup.dir.monitor",
        "lxc.cgroup.dir.monitor.pivot",
        "lxc.cgroup.dir.container.inner",
        "lxc.cgroup.relative",
        "lxc.console.buffer.size",
        "lxc.console.size",
        "lxc.console.rotate",
        "lxc.console.logfile",
        "lxc.console.path",
        "lxc.ephemeral",
        "lxc.environment",
        "lxc.execute.cmd",
        "lxc.group",
        "lxc.hook.pre-start",
        "lxc.hook.pre-mount",
        "lxc.hook.mount",
        "lxc.hook.autodev",
        "lxc.hook.start-host",
        "lxc.hook.start",
        "lxc.hook.stop",
        "lxc.hook.post-stop",
        "lxc.hook.clone",
        "lxc.hook.destroy",
        "lxc.hook.version",
        "lxc.idmap",
        "lxc.include",
        "lxc.init.cmd",
        "lxc.init.cwd",
        "lxc.init.uid",
        "lxc.init.gid",
        "lxc.init.groups",
        "lxc.keyring.session",
        "lxc.log.file",
        "lxc.log.level",
        "lxc.log.syslog",
        "lxc.monitor.unshare",
        "lxc.monitor.signal.pdeath",
        "lxc.mount.auto",
        "lxc.mount.entry",
        "lxc.mount.fstab",
        "lxc.namespace.clone",
        "lxc.namespace.keep",
        "lxc.namespace.share.net",
        "lxc.net",
        "lxc.no_new_privs",
        "lxc.prlimit.nofile",
        "lxc.proc.oom_score_adj",
        "lxc.pty.max",
        "lxc.rootfs.path",
        "lxc.rootfs.mount",
        "lxc.rootfs.options",
        "lxc.rootfs.managed",
        "lxc.sched.core",
        "lxc.seccomp.profile",
        "lxc.seccomp.allow_nesting",
        "lxc.seccomp.notify.proxy",
        "lxc.seccomp.notify.cookie",
        "lxc.selinux.context",
        "lxc.selinux.context.keyring",
        "lxc.signal.halt",
        "lxc.signal.reboot",
        "lxc.signal.stop",
        "lxc.start.auto",
        "lxc.start.delay",
        "lxc.start.order",
        "lxc.sysctl.kernel.shmmax",
        "lxc.tty.max",
        "lxc.tty.dir",
        "lxc.uts.name",
        "lxc.time.offset.boot",
        "lxc.time.offset.monotonic",
    ];
    for k in keys {
        assert!(warren_lxc_config::key_status(k).is_some(), "{k}");
    }
    for sub in [
        "type",
        "flags",
        "link",
        "name",
        "hwaddr",
        "mtu",
        "ipv4.address",
        "ipv4.gateway",
        "ipv6.address",
        "ipv6.gateway",
        "script.up",
        "script.down",
        "veth.pair",
        "veth.mode",
        "veth.ipv4.route",
        "veth.ipv6.route",
        "veth.vlan.id",
        "veth.vlan.tagged.id",
        "veth.n_rxqueues",
        "veth.n_txqueues",
        "macvlan.mode",
        "ipvlan.mode",
        "ipvlan.isolation",
        "vlan.id",
        "l2proxy",
    ] {
        assert!(
            warren_lxc_config::key_status(&format!("lxc.net.3.{sub}")).is_some(),
            "{sub}"
        );
    }
    use warren_lxc_config::KeyStatus::*;
    assert_eq!(
        warren_lxc_config::key_status("lxc.apparmor.profile"),
        Some(UnsupportedOnHost)
    );
    assert_eq!(
        warren_lxc_config::key_status("lxc.cap.drop"),
        Some(Implemented)
    );
    assert_eq!(
        warren_lxc_config::key_status("lxc.idmap"),
        Some(Implemented)
    );
    assert_eq!(
        warren_lxc_config::key_status("lxc.net.0.veth.pair"),
        Some(Implemented)
    );
    assert_eq!(
        warren_lxc_config::key_status("lxc.net.0.l2proxy"),
        Some(Implemented)
    );
    assert_eq!(
        warren_lxc_config::key_status("lxc.uts.name"),
        Some(Implemented)
    );
    assert_eq!(warren_lxc_config::key_status("lxc.bogus"), None);
}
