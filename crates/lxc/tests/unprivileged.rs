//! Unprivileged containers started by root: `lxc.idmap` maps written by warren itself, the rootfs
//! shown through an idmapped mount (no chown of the tree), and the container's root a plain
//! unprivileged user on the host.

use std::os::unix::fs::MetadataExt;
use warren_testutil::{cgroups_named, require_root, unique_name, Lxc};

const BIN: &str = env!("CARGO_BIN_EXE_warren-lxc");

const MAPS: [&str; 2] = [
    "lxc.idmap = u 0 100000 65536",
    "lxc.idmap = g 0 100000 65536",
];

/// An unprivileged busybox container as lxc-create makes one: the id maps in the base config.
fn create_unprivileged(lxc: &Lxc, name: &str, extra: &[&str]) {
    let base = lxc.lxcpath().join(format!("{name}.base.conf"));
    let mut text = MAPS.join("\n");
    text.push('\n');
    for l in extra {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(&base, text).expect("base config");
    lxc.ok(
        "create",
        &[
            "-n",
            name,
            "-t",
            "busybox",
            "-f",
            base.to_str().expect("utf8"),
        ],
    );
}

#[test]
fn unprivileged_container_runs_as_mapped_root() {
    if !require_root("unprivileged_container_runs_as_mapped_root") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("unpriv");
    create_unprivileged(&lxc, &name, &[]);
    let cfg = std::fs::read_to_string(lxc.config_path(&name)).expect("config");
    assert!(cfg.contains("userns.conf"), "{cfg}");
    let out = lxc.run("start", &["-n", &name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("lxc.idmap is set but not enforced"));
    let pid: u32 = lxc
        .ok("info", &["-n", &name, "-pH"])
        .trim()
        .parse()
        .expect("pid");
    // on the host, the container's root is uid 100000
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "100000"),
        "{uid_line}"
    );
    // inside: root, the map, and the rootfs's files owned by root without any chown
    let inside = lxc.ok(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; stat -c %u /bin/busybox; touch /root/made-inside",
        ],
    );
    let lines: Vec<&str> = inside.lines().map(str::trim).collect();
    assert_eq!(lines[0], "0");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    assert_eq!(lines[2], "0");
    let rootfs = lxc.lxcpath().join(&name).join("rootfs");
    assert_eq!(
        std::fs::metadata(rootfs.join("bin/busybox"))
            .expect("busybox")
            .uid(),
        0
    );
    // written through the idmapped mount: stored with the rootfs's own ownership
    assert_eq!(
        std::fs::metadata(rootfs.join("root/made-inside"))
            .expect("file")
            .uid(),
        0
    );
    let fancy = lxc.ok("ls", &["-f", "-F", "NAME,UNPRIVILEGED"]);
    assert!(
        fancy
            .lines()
            .any(|l| l.starts_with(&name) && l.contains("true")),
        "{fancy}"
    );
    lxc.ok("stop", &["-n", &name, "-k"]);
    assert!(cgroups_named(&format!("warren.payload.{name}")).is_empty());
}

#[test]
fn unprivileged_root_cannot_write_host_files() {
    if !require_root("unprivileged_root_cannot_write_host_files") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("hostw");
    let shared = tempfile::tempdir().expect("tempdir");
    std::fs::write(shared.path().join("owned-by-root"), "host data\n").expect("file");
    // the temp dir is 0700: let "others" in, as a real shared directory would be
    std::fs::set_permissions(
        shared.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let entry = format!(
        "lxc.mount.entry = {} mnt none bind,create=dir 0 0",
        shared.path().display()
    );
    create_unprivileged(&lxc, &name, &[&entry]);
    lxc.ok("start", &["-n", &name]);
    let out = lxc.run(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            "echo evil >> /mnt/owned-by-root",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = lxc.run(
        "attach",
        &["-n", &name, "--", "sh", "-c", "echo evil > /mnt/new-file"],
    );
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(shared.path().join("owned-by-root")).expect("read"),
        "host data\n"
    );
    assert!(!shared.path().join("new-file").exists());
    lxc.ok("stop", &["-n", &name, "-k"]);
}

#[test]
fn unprivileged_console_and_clean_stop() {
    if !require_root("unprivileged_console_and_clean_stop") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("ucon");
    create_unprivileged(&lxc, &name, &[]);
    lxc.ok("start", &["-n", &name]);
    // the console and ttys are the container's own ptys: its root owns them
    let owners = lxc.ok(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            "stat -c %u /dev/console /dev/tty1",
        ],
    );
    assert_eq!(owners.split_whitespace().collect::<Vec<_>>(), ["0", "0"]);
    let log = lxc.console_log_with(&name, "Please press Enter");
    assert!(log.contains("Please press Enter"), "{log:?}");
    lxc.ok("stop", &["-n", &name, "-t", "20"]);
    assert_eq!(lxc.ok("info", &["-n", &name, "-sH"]).trim(), "STOPPED");
}

#[test]
fn a_map_without_gids_is_refused_with_the_reason() {
    if !require_root("a_map_without_gids_is_refused_with_the_reason") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("nog");
    lxc.busybox(&name, &["lxc.idmap = u 0 100000 65536"]);
    let out = lxc.run("start", &["-n", &name]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lxc.idmap") && err.contains("g"), "{err}");
    assert!(cgroups_named(&format!("warren.payload.{name}")).is_empty());
}

#[test]
fn unprivileged_container_sharing_the_host_network_gets_a_read_only_sys() {
    if !require_root("unprivileged_container_sharing_the_host_network_gets_a_read_only_sys") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("unet");
    // its user namespace doesn't own the host's network namespace: no fresh sysfs allowed there
    create_unprivileged(&lxc, &name, &["lxc.namespace.keep = net"]);
    lxc.ok("start", &["-n", &name]);
    let sys = lxc.ok(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            "grep ' /sys ' /proc/self/mounts",
        ],
    );
    assert!(sys.contains(" ro,"), "{sys}");
    let w = lxc.run(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            "echo 1 > /sys/kernel/profiling",
        ],
    );
    assert!(!w.status.success());
    lxc.ok("stop", &["-n", &name, "-k"]);
}

#[test]
fn a_shifted_rootfs_runs_without_an_idmapped_mount_and_shifts_back() {
    if !require_root("a_shifted_rootfs_runs_without_an_idmapped_mount_and_shifts_back") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("shift");
    // as on a filesystem without idmapped mounts: create shifts the files through the map once
    let base = lxc.lxcpath().join("maps.conf");
    std::fs::write(&base, format!("{}\n", MAPS.join("\n"))).expect("maps");
    let out = lxc
        .cmd("create")
        .args([
            "-n",
            &name,
            "-t",
            "busybox",
            "-f",
            base.to_str().expect("utf8"),
        ])
        .env("WARREN_FORCE_SHIFT", "1")
        .output()
        .expect("create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rootfs = lxc.lxcpath().join(&name).join("rootfs");
    assert_eq!(
        std::fs::metadata(rootfs.join("bin/busybox"))
            .expect("busybox")
            .uid(),
        100000
    );
    lxc.ok("start", &["-n", &name]);
    assert_eq!(
        lxc.ok(
            "attach",
            &["-n", &name, "--", "stat", "-c", "%u", "/bin/busybox"]
        )
        .trim(),
        "0"
    );
    let mounts = lxc.ok(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            "grep ' / ' /proc/self/mounts",
        ],
    );
    assert!(!mounts.contains("idmapped"), "{mounts}");
    // shifting a running container is refused; stopped, it shifts back and runs idmapped
    let out = lxc.run("shift", &["-n", &name, "--reverse"]);
    assert_eq!(out.status.code(), Some(1));
    lxc.ok("stop", &["-n", &name, "-k"]);
    lxc.ok("shift", &["-n", &name, "--reverse"]);
    assert_eq!(
        std::fs::metadata(rootfs.join("bin/busybox"))
            .expect("busybox")
            .uid(),
        0
    );
    lxc.ok("start", &["-n", &name]);
    let mounts = lxc.ok(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            "grep ' / ' /proc/self/mounts",
        ],
    );
    assert!(mounts.contains("idmapped"), "{mounts}");
    lxc.ok("stop", &["-n", &name, "-k"]);
}
