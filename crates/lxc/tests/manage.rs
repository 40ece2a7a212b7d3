//! Managing containers on disk with the real binary: copy, snapshot, autostart, local template.

use std::process::Command;
use warren_testutil::{require_root, unique_name, Lxc};

const BIN: &str = env!("CARGO_BIN_EXE_warren-lxc");

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn copy_makes_an_independent_startable_container() {
    if !require_root("copy_makes_an_independent_startable_container") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let a = unique_name("cpa");
    let b = unique_name("cpb");
    lxc.busybox(&a, &[]);
    std::fs::write(
        lxc.lxcpath().join(&a).join("rootfs/root/marker"),
        "original",
    )
    .expect("marker");
    lxc.ok("copy", &["-n", &a, "-N", &b]);
    let cfg = std::fs::read_to_string(lxc.config_path(&b)).expect("config");
    assert!(cfg.contains(&format!("lxc.uts.name = {b}")), "{cfg}");
    assert!(
        cfg.contains(&format!("{}/{b}/rootfs", lxc.lxcpath().display())),
        "{cfg}"
    );
    assert!(!cfg.contains(&format!("/{a}/rootfs")), "{cfg}");
    // independent: changing the copy leaves the original alone
    std::fs::write(lxc.lxcpath().join(&b).join("rootfs/root/marker"), "copy").expect("marker");
    let orig =
        std::fs::read_to_string(lxc.lxcpath().join(&a).join("rootfs/root/marker")).expect("marker");
    assert_eq!(orig, "original");
    lxc.ok("start", &["-n", &b]);
    assert_eq!(lxc.ok("attach", &["-n", &b, "--", "hostname"]).trim(), b);
    // copying a running container, or onto an existing name, is refused
    let out = lxc.run("copy", &["-n", &b, "-N", &unique_name("cpc")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = lxc.run("copy", &["-n", &a, "-N", &b]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    lxc.ok("stop", &["-n", &b, "-k"]);
}

#[test]
fn snapshot_create_list_restore_destroy() {
    if !require_root("snapshot_create_list_restore_destroy") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("snap");
    lxc.busybox(&name, &[]);
    let marker = lxc.lxcpath().join(&name).join("rootfs/root/marker");
    std::fs::write(&marker, "v1").expect("marker");
    lxc.ok("snapshot", &["-n", &name]);
    let list = lxc.ok("snapshot", &["-n", &name, "-L"]);
    assert!(list.starts_with("snap0 ("), "{list}");
    std::fs::write(&marker, "v2").expect("marker");
    lxc.ok("snapshot", &["-n", &name, "-r", "snap0"]);
    assert_eq!(std::fs::read_to_string(&marker).expect("marker"), "v1");
    // restore as a new container
    let other = unique_name("snapn");
    lxc.ok("snapshot", &["-n", &name, "-r", "snap0", "-N", &other]);
    lxc.ok("start", &["-n", &other]);
    assert_eq!(
        lxc.ok("attach", &["-n", &other, "--", "cat", "/root/marker"])
            .trim(),
        "v1"
    );
    lxc.ok("stop", &["-n", &other, "-k"]);
    // a running container can't be snapshotted on plain directories
    lxc.ok("start", &["-n", &name]);
    let out = lxc.run("snapshot", &["-n", &name]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    lxc.ok("stop", &["-n", &name, "-k"]);
    // destroy refuses while snapshots exist, unless -s
    let out = lxc.run("destroy", &["-n", &name]);
    assert_eq!(out.status.code(), Some(1));
    lxc.ok("snapshot", &["-n", &name, "-d", "snap0"]);
    lxc.ok("destroy", &["-n", &name]);
}

#[test]
fn autostart_starts_and_stops_marked_containers_in_order() {
    if !require_root("autostart_starts_and_stops_marked_containers_in_order") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let a = unique_name("asa");
    let b = unique_name("asb");
    let c = unique_name("asc");
    lxc.busybox(&a, &["lxc.start.auto = 1", "lxc.start.order = 2"]);
    lxc.busybox(&b, &["lxc.start.auto = 1", "lxc.start.order = 1"]);
    lxc.busybox(&c, &[]);
    let list = lxc.ok("autostart", &["-L"]);
    let names: Vec<&str> = list
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(names, vec![b.as_str(), a.as_str()], "{list}");
    lxc.ok("autostart", &[]);
    assert_eq!(lxc.ok("info", &["-n", &a, "-sH"]).trim(), "RUNNING");
    assert_eq!(lxc.ok("info", &["-n", &b, "-sH"]).trim(), "RUNNING");
    assert_eq!(lxc.ok("info", &["-n", &c, "-sH"]).trim(), "STOPPED");
    let fancy = lxc.ok("ls", &["-f", "-F", "NAME,AUTOSTART"]);
    assert!(
        fancy.lines().any(|l| l.starts_with(&a) && l.contains(" 1")),
        "{fancy}"
    );
    lxc.ok("autostart", &["-k"]);
    assert_eq!(lxc.ok("info", &["-n", &a, "-sH"]).trim(), "STOPPED");
    assert_eq!(lxc.ok("info", &["-n", &b, "-sH"]).trim(), "STOPPED");
}

#[test]
fn local_template_creates_from_an_image_pair() {
    if !require_root("local_template_creates_from_an_image_pair") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let src = unique_name("lsrc");
    lxc.busybox(&src, &[]);
    let work = tempfile::tempdir().expect("tempdir");
    let rootfs_tar = work.path().join("rootfs.tar.xz");
    let meta_tar = work.path().join("meta.tar.xz");
    let meta_dir = work.path().join("meta");
    std::fs::create_dir(&meta_dir).expect("meta dir");
    std::fs::write(
        meta_dir.join("config"),
        "lxc.include = LXC_TEMPLATE_CONFIG/common.conf\nlxc.arch = x86_64\n",
    )
    .expect("meta config");
    std::fs::write(meta_dir.join("templates"), "/etc/hostname\n").expect("templates");
    std::fs::write(
        lxc.lxcpath().join(&src).join("rootfs/etc/hostname"),
        "LXC_NAME\n",
    )
    .expect("hostname");
    let tar = |out: &std::path::Path, dir: &std::path::Path| {
        let st = Command::new("tar")
            .arg("-cJf")
            .arg(out)
            .arg("-C")
            .arg(dir)
            .arg(".")
            .status()
            .expect("tar");
        assert!(st.success());
    };
    tar(&rootfs_tar, &lxc.lxcpath().join(&src).join("rootfs"));
    tar(&meta_tar, &meta_dir);
    let name = unique_name("loc");
    lxc.ok(
        "create",
        &[
            "-n",
            &name,
            "-t",
            "local",
            "--",
            "--metadata",
            meta_tar.to_str().expect("utf8"),
            "--fstree",
            rootfs_tar.to_str().expect("utf8"),
        ],
    );
    let hostname = std::fs::read_to_string(lxc.lxcpath().join(&name).join("rootfs/etc/hostname"))
        .expect("hostname");
    assert_eq!(hostname.trim(), name);
    lxc.ok("start", &["-n", &name]);
    assert_eq!(
        lxc.ok("attach", &["-n", &name, "--", "cat", "/proc/1/comm"])
            .trim(),
        "init"
    );
    lxc.ok("stop", &["-n", &name, "-k"]);
    // a missing fstree is an error and leaves nothing behind
    let bad = unique_name("locbad");
    let out = lxc.run(
        "create",
        &[
            "-n",
            &bad,
            "-t",
            "local",
            "--",
            "--metadata",
            meta_tar.to_str().expect("utf8"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!lxc.lxcpath().join(&bad).exists());
}

/// `warren-lxc cgroup` and `device` (lxc-cgroup, lxc-device) on a running container: values read
/// and set where the controller is, device rules changed wherever the policy lives (the v1
/// controller and the cgroup2 program both here), a host node bound in and taken out, a network
/// interface moved in and back.
#[test]
fn cgroup_and_device_change_a_running_container() {
    if !require_root("cgroup_and_device_change_a_running_container") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let c = unique_name("dev");
    // /dev/full denied by both: the v1 rule (a cgroup2 program on a pure cgroup2 host) and a
    // cgroup2 device program
    lxc.busybox(
        &c,
        &[
            "lxc.cgroup.devices.deny = c 1:7 rwm",
            "lxc.cgroup2.devices.deny = c 1:7 rwm",
        ],
    );
    let stopped = lxc.run("cgroup", &["-n", &c, "pids.max"]);
    assert!(
        stderr(&stopped).contains("is not running"),
        "{}",
        stderr(&stopped)
    );
    lxc.ok("start", &["-n", &c]);
    let reads = |path: &str| {
        lxc.run("attach", &["-n", &c, "--", "head", "-c", "1", path])
            .status
            .success()
    };
    assert!(!reads("/dev/full"), "denied by the config");
    lxc.ok("cgroup", &["-n", &c, "devices.allow", "c 1:7 rwm"]);
    assert!(reads("/dev/full"), "allowed now, by both");
    lxc.ok("cgroup", &["-n", &c, "devices.deny", "c 1:7 rwm"]);
    assert!(!reads("/dev/full"), "denied again");
    // values
    lxc.ok("cgroup", &["-n", &c, "pids.max", "321"]);
    assert_eq!(lxc.ok("cgroup", &["-n", &c, "pids.max"]).trim(), "321");
    for (bad, says) in [
        (&["../../tasks"][..], "not a cgroup file name"),
        (&["devices.allow", "q 1:7 rwm"][..], "devices.allow"),
        (&["nosuch.file"][..], "nosuch"),
    ] {
        let mut args = vec!["-n", c.as_str()];
        args.extend_from_slice(bad);
        let o = lxc.run("cgroup", &args);
        assert!(
            !o.status.success() && stderr(&o).contains(says),
            "{bad:?}: {}",
            stderr(&o)
        );
    }
    // a host node, bound in and allowed; taken out and denied
    lxc.ok("device", &["-n", &c, "add", "/dev/full", "/dev/hostfull"]);
    assert!(reads("/dev/hostfull"));
    lxc.ok("device", &["-n", &c, "del", "/dev/full", "/dev/hostfull"]);
    assert!(!lxc
        .run("attach", &["-n", &c, "--", "ls", "/dev/hostfull"])
        .status
        .success());
    assert!(!reads("/dev/full"));
    let notnode = lxc.run("device", &["-n", &c, "add", "/etc/hostname"]);
    assert!(
        stderr(&notnode).contains("not a device node"),
        "{}",
        stderr(&notnode)
    );
    // a network interface, in and back out
    let (host, peer) = (unique_name("dva"), unique_name("dvb"));
    let veth = Command::new("ip")
        .args(["link", "add", &host, "type", "veth", "peer", "name", &peer])
        .status()
        .expect("ip");
    assert!(veth.success());
    struct DeleteLink(String);
    impl Drop for DeleteLink {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).status();
        }
    }
    let _link = DeleteLink(host.clone());
    lxc.ok("device", &["-n", &c, "add", &peer, "eth7"]);
    assert!(!std::path::Path::new("/sys/class/net").join(&peer).exists());
    lxc.ok("attach", &["-n", &c, "--", "ip", "link", "show", "eth7"]);
    lxc.ok("device", &["-n", &c, "del", "eth7", &peer]);
    assert!(std::path::Path::new("/sys/class/net").join(&peer).exists());
    let missing = lxc.run("device", &["-n", &c, "add", "warren-nosuch0"]);
    assert!(stderr(&missing).contains("no network interface warren-nosuch0"));
    lxc.ok("stop", &["-n", &c, "-k"]);
}
