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
