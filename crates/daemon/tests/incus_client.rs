//! warrend's first endpoints driven by the real incus client (INCUS_SOCKET at a warrend the test
//! starts with its own WARREN_DIR), and bad requests answered in Incus's error envelope with
//! nothing changed.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use warren_testutil::require_root;

mod common;
use common::*;

#[test]
fn the_incus_client_reads_server_profiles_pools_projects_and_networks() {
    if !require_root("the_incus_client_reads_server_profiles_pools_projects_and_networks")
        || !have_incus()
    {
        return;
    }
    let mut w = Warrend::start();
    admin_init(&w);
    let info = w.ok(&["info"]);
    assert!(
        info.contains("api_status: stable")
            && info.contains("instance_create_start")
            && info.contains("storage: dir"),
        "{info}"
    );
    assert!(w.ok(&["list", "--format", "csv"]).trim().is_empty());
    let profile = w.ok(&["profile", "show", "default"]);
    assert!(
        profile.contains("root:\n    path: /\n    pool: default\n    type: disk"),
        "{profile}"
    );
    let storage = w.ok(&["storage", "list", "--format", "csv"]);
    assert!(storage.starts_with("default,dir,"), "{storage}");
    assert!(Path::new(&w.dir.path().join("storage-pools/default")).is_dir());
    let projects = w.ok(&["project", "list", "--format", "csv"]);
    assert!(projects.starts_with("default (current),"), "{projects}");
    assert!(
        w.ok(&["network", "list", "--format", "csv"])
            .lines()
            .count()
            >= 1
    );
    assert!(w
        .ok(&["operation", "list", "--format", "csv"])
        .trim()
        .is_empty());
    assert!(w
        .ok(&["image", "list", "--format", "csv"])
        .trim()
        .is_empty());
    let missing = w.incus(&["info", "nosuch"]);
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr).trim(),
        "Error: Failed to fetch instance \"nosuch\" in project \"default\": Instance not found"
    );
    // state survives a restart
    w.restart();
    assert!(w
        .ok(&["profile", "show", "default"])
        .contains("pool: default"));
    let again = Command::new(WARREN)
        .args(["admin", "init", "--minimal", "--network", "none"])
        .env("WARREN_DIR", w.dir.path())
        .output()
        .expect("warren");
    assert!(
        again.status.success(),
        "init is idempotent: {}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn bad_requests_get_clear_errors_and_change_nothing() {
    if !require_root("bad_requests_get_clear_errors_and_change_nothing") {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let before = w.raw("GET", "/1.0/profiles/default", b"").1;
    let (status, body) = w.raw("PUT", "/1.0/profiles/default", b"{not json");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("Invalid JSON"),
        "{body}"
    );
    assert_eq!(
        (body["type"].as_str(), body["error_code"].as_u64()),
        (Some("error"), Some(400))
    );
    let (status, body) = w.raw(
        "PUT",
        "/1.0/profiles/default",
        br#"{"devices":{"x":{"type":"gpu"}}}"#,
    );
    assert!(
        status == 400
            && body["error"]
                .as_str()
                .unwrap_or("")
                .contains("unsupported device type \"gpu\""),
        "{body}"
    );
    let (status, body) = w.raw(
        "PUT",
        "/1.0/profiles/default",
        br#"{"devices":{"root":{"type":"disk","path":"/","pool":"nosuch"}}}"#,
    );
    assert!(
        status == 400
            && body["error"]
                .as_str()
                .unwrap_or("")
                .contains("\"nosuch\" doesn't exist"),
        "{body}"
    );
    let (status, body) = w.raw(
        "POST",
        "/1.0/storage-pools",
        br#"{"name":"a/b","driver":"dir"}"#,
    );
    assert!(
        status == 400
            && body["error"]
                .as_str()
                .unwrap_or("")
                .contains("Invalid storage pool name"),
        "{body}"
    );
    let (status, body) = w.raw(
        "POST",
        "/1.0/storage-pools",
        br#"{"name":"z","driver":"zfs"}"#,
    );
    assert!(
        status == 400
            && body["error"]
                .as_str()
                .unwrap_or("")
                .contains("not supported"),
        "{body}"
    );
    let (status, _) = w.raw("PUT", "/1.0/profiles/default", &vec![b' '; 17 << 20]);
    assert_eq!(status, 413);
    let (status, _) = w.raw("GET", "/1.0/nosuch", b"");
    assert_eq!(status, 404);
    assert_eq!(
        w.raw("GET", "/1.0/profiles/default", b"").1,
        before,
        "a refused request changed the profile"
    );
    assert!(
        !w.dir.path().join("storage-pools/a").exists()
            && !w.dir.path().join("storage-pools/z").exists()
    );
}

#[test]
fn the_socket_is_only_for_root_and_warren_admin() {
    if !require_root("the_socket_is_only_for_root_and_warren_admin") {
        return;
    }
    let w = Warrend::start();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(w.socket())
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o660);
    // a regular user (not in warren-admin) can't connect
    if warren_testutil::user_ids(warren_testutil::TEST_USER).is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the test user is missing: scripts/setup-host.sh makes it"
        );
        return;
    }
    // the directory must be reachable for the check to be about the socket's mode
    let _ = std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o711));
    let o = Command::new("runuser")
        .args(["-u", warren_testutil::TEST_USER, "--", "python3", "-c"])
        .arg("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])")
        .arg(w.socket())
        .output()
        .expect("runuser");
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn the_incus_client_imports_launches_stops_starts_and_deletes() {
    if !require_root("the_incus_client_imports_launches_stops_starts_and_deletes") || !have_incus()
    {
        return;
    }
    let mut w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    let out = w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    assert!(out.contains("Image imported with fingerprint: "), "{out}");
    let list = w.ok(&["image", "list", "--format", "csv"]);
    assert!(
        list.starts_with("bb,") && list.contains("BusyBox 1.35"),
        "{list}"
    );
    w.ok(&["launch", "bb", "c1"]);
    assert!(w
        .ok(&["list", "--format", "csv"])
        .starts_with("c1,RUNNING,"));
    // unprivileged by default, in warrend's own range
    let pid = w.pid("c1");
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).expect("uid_map");
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", "1000000", "1000000000"]
    );
    // the hostname template of the image was rendered at create
    let hostname = std::fs::read_to_string(w.dir.path().join("containers/c1/rootfs/etc/hostname"))
        .expect("hostname");
    assert_eq!(hostname.trim(), "c1");
    // exec: separate stdout and stderr, the exit code, stdin, environment and cwd, a missing binary
    let o = w.incus(&[
        "exec",
        "c1",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).as_ref(),
            String::from_utf8_lossy(&o.stderr).as_ref()
        ),
        (Some(3), "out\n", "err\n")
    );
    let mut child = Command::new("incus")
        .args(["exec", "c1", "--", "cat"])
        .env("INCUS_SOCKET", w.socket())
        .env("INCUS_CONF", w.dir.path().join("client"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("incus exec");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"through stdin\n")
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "through stdin\n");
    let o = w.ok(&[
        "exec",
        "c1",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--",
        "sh",
        "-c",
        "echo $FOO; pwd",
    ]);
    assert_eq!(o, "bar\n/tmp\n");
    let o = w.incus(&["exec", "c1", "--", "/nonexistent"]);
    assert_eq!(
        o.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // the console's log (the example image's init writes nothing to it: an empty log, no error)
    w.ok(&["console", "c1", "--show-log"]);
    // config set/get/show, a bad value failing the operation, and the limit in effect after a restart
    w.ok(&["config", "set", "c1", "limits.memory=256MiB"]);
    assert_eq!(
        w.ok(&["config", "get", "c1", "limits.memory"]).trim(),
        "256MiB"
    );
    let bad = w.incus(&["config", "set", "c1", "limits.memory=bogus"]);
    assert!(String::from_utf8_lossy(&bad.stderr)
        .contains("Invalid config: Invalid value for limits.memory: bogus"));
    let bad = w.incus(&["config", "set", "c1", "nosuch.key=1"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Unknown configuration key: nosuch.key"));
    assert!(w
        .ok(&["config", "show", "c1"])
        .contains("limits.memory: 256MiB"));
    w.ok(&["restart", "-f", "c1"]);
    let pid = w.pid("c1");
    assert_eq!(
        memory_limit(&pid),
        Some(256 << 20),
        "the limit is in the container's cgroup"
    );
    // a daemon restart leaves the container running, and finds it so
    w.restart();
    assert!(w
        .ok(&["list", "--format", "csv"])
        .starts_with("c1,RUNNING,"));
    w.ok(&["stop", "-f", "c1"]);
    assert!(w
        .ok(&["list", "--format", "csv"])
        .starts_with("c1,STOPPED,"));
    w.ok(&["start", "c1"]);
    w.ok(&["delete", "-f", "c1"]);
    assert!(w.ok(&["list", "--format", "csv"]).trim().is_empty());
    assert!(!w.dir.path().join("containers/c1").exists());
    // bad names and unknown keys are refused before anything is made
    let bad = w.incus(&["launch", "bb", "no/slash"]);
    assert!(!bad.status.success());
    let bad = w.incus(&["launch", "bb", "c2", "-c", "bogus.key=1"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("Unknown configuration key: bogus.key"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(w.ok(&["list", "--format", "csv"]).trim().is_empty());
    w.ok(&["image", "delete", "bb"]);
}

/// The memory limit of a process's cgroup (v1 memory controller, or cgroup2).
fn memory_limit(pid: &str) -> Option<u64> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in cgroups.lines() {
        let mut f = line.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        let file = if controllers.split(',').any(|c| c == "memory") {
            format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
        } else if controllers.is_empty() && Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        {
            format!("/sys/fs/cgroup{path}/memory.max")
        } else {
            continue;
        };
        if let Ok(v) = std::fs::read_to_string(file) {
            return v.trim().parse().ok();
        }
    }
    None
}

#[test]
fn snapshots_restore_and_copies() {
    if !require_root("snapshots_restore_and_copies") || !have_incus() {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    w.ok(&["launch", "bb", "s1"]);
    w.ok(&["exec", "s1", "--", "sh", "-c", "echo before > /root/f"]);
    w.ok(&["snapshot", "create", "s1", "snap0"]);
    assert!(w
        .ok(&["snapshot", "list", "s1", "--format", "csv"])
        .starts_with("snap0,"));
    w.ok(&["exec", "s1", "--", "sh", "-c", "echo after > /root/f"]);
    w.ok(&["stop", "-f", "s1"]);
    w.ok(&["snapshot", "restore", "s1", "snap0"]);
    w.ok(&["start", "s1"]);
    assert_eq!(w.ok(&["exec", "s1", "--", "cat", "/root/f"]), "before\n");
    w.ok(&["copy", "s1", "s2"]);
    w.ok(&["start", "s2"]);
    assert_eq!(w.ok(&["exec", "s2", "--", "cat", "/root/f"]), "before\n");
    assert_eq!(w.ok(&["exec", "s2", "--", "hostname"]).trim(), "s2");
    // the image's templates for copies ran: /etc/hostname and /etc/hosts name the copy
    assert_eq!(
        w.ok(&["exec", "s2", "--", "cat", "/etc/hostname"]).trim(),
        "s2"
    );
    assert!(w
        .ok(&["exec", "s2", "--", "cat", "/etc/hosts"])
        .contains("s2"));
    w.ok(&["snapshot", "delete", "s1", "snap0"]);
    assert!(w
        .ok(&["snapshot", "list", "s1", "--format", "csv"])
        .trim()
        .is_empty());
    w.ok(&["delete", "-f", "s1", "s2"]);
    assert!(
        !w.dir.path().join("snapshots/s1").exists() && !w.dir.path().join("containers/s2").exists()
    );
}

#[test]
fn a_bridged_nic_device_gives_the_container_an_interface_on_the_bridge() {
    if !require_root("a_bridged_nic_device_gives_the_container_an_interface_on_the_bridge")
        || !have_incus()
    {
        return;
    }
    let bridge = warren_testutil::TestBridge::new();
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    w.ok(&["init", "bb", "n1"]);
    w.ok(&[
        "config",
        "device",
        "add",
        "n1",
        "eth0",
        "nic",
        "nictype=bridged",
        &format!("parent={}", bridge.name),
    ]);
    let bad = w.incus(&[
        "config",
        "device",
        "add",
        "n1",
        "eth1",
        "nic",
        "nictype=bridged",
        "parent=nosuchbr0",
    ]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("is not a bridge on this host"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    w.ok(&["start", "n1"]);
    // an address on eth0 shows in incus list's IPV4 column
    w.ok(&[
        "exec",
        "n1",
        "--",
        "ip",
        "addr",
        "add",
        "10.199.77.5/24",
        "dev",
        "eth0",
    ]);
    let list = w.ok(&["list", "--format", "csv", "-c", "n4"]);
    assert!(list.contains("10.199.77.5 (eth0)"), "{list}");
    let mac = w.ok(&["exec", "n1", "--", "cat", "/sys/class/net/eth0/address"]);
    assert!(mac.starts_with("00:16:3e:"), "{mac}");
    // the host side is enslaved to the bridge
    let ports = std::fs::read_dir(format!("/sys/class/net/{}/brif", bridge.name))
        .expect("brif")
        .count();
    assert_eq!(ports, 1);
    w.ok(&["delete", "-f", "n1"]);
    assert_eq!(
        std::fs::read_dir(format!("/sys/class/net/{}/brif", bridge.name))
            .expect("brif")
            .count(),
        0
    );
}

#[test]
fn fifty_clients_create_exec_in_and_delete_instances_at_once() {
    if !require_root("fifty_clients_create_exec_in_and_delete_instances_at_once") || !have_incus() {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let w = &w;
                s.spawn(move || {
                    let name = format!("p{i}");
                    for args in [
                        vec!["launch", "bb", name.as_str()],
                        vec!["exec", name.as_str(), "--", "/bin/true"],
                        vec!["delete", "-f", name.as_str()],
                    ] {
                        let o = w.incus(&args);
                        if !o.status.success() {
                            return Some(format!(
                                "{args:?}: {}",
                                String::from_utf8_lossy(&o.stderr).trim()
                            ));
                        }
                    }
                    None
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().flatten())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of 50 clients failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // nothing lost, nothing left: the database, the containers and the cgroups agree
    assert!(w.ok(&["list", "--format", "csv"]).trim().is_empty());
    let left: Vec<_> = std::fs::read_dir(w.dir.path().join("containers"))
        .expect("containers")
        .flatten()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let (status, body) = w.raw("GET", "/1.0/operations?recursion=1", b"");
    assert_eq!(status, 200);
    assert!(
        body["metadata"]["failure"]
            .as_array()
            .map_or(true, |f| f.is_empty()),
        "failed operations: {}",
        body["metadata"]["failure"]
    );
}

#[test]
fn files_are_pushed_pulled_and_deleted_inside_the_container_only() {
    if !require_root("files_are_pushed_pulled_and_deleted_inside_the_container_only")
        || !have_incus()
    {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    w.ok(&["launch", "bb", "f1"]);
    let local = w.dir.path().join("local.txt");
    std::fs::write(&local, "pushed content\n").expect("write");
    w.ok(&[
        "file",
        "push",
        &local.to_string_lossy(),
        "f1/tmp/pushed.txt",
        "--mode",
        "0640",
    ]);
    assert_eq!(
        w.ok(&["exec", "f1", "--", "cat", "/tmp/pushed.txt"]),
        "pushed content\n"
    );
    let listing = w.ok(&["exec", "f1", "--", "ls", "-ln", "/tmp/pushed.txt"]);
    assert!(
        listing.starts_with("-rw-r-----") && listing.contains(" 0 "),
        "owned by the container's root: {listing}"
    );
    assert_eq!(w.ok(&["file", "pull", "f1/etc/hostname", "-"]).trim(), "f1");
    // a symlink inside the container to a host path reaches the container's file, never the host's
    let host = w.dir.path().join("host-secret");
    std::fs::write(&host, "host secret\n").expect("write");
    w.ok(&[
        "exec",
        "f1",
        "--",
        "ln",
        "-s",
        &host.to_string_lossy(),
        "/root/link",
    ]);
    let pulled = w.incus(&["file", "pull", "f1/root/link", "-"]);
    assert!(
        !String::from_utf8_lossy(&pulled.stdout).contains("host secret"),
        "read the host's file through a symlink"
    );
    // .. can't climb out of the rootfs
    let escape = w.dir.path().join("escape.txt");
    let _ = w.incus(&[
        "file",
        "push",
        &local.to_string_lossy(),
        &format!("f1/../../../..{}", escape.display()),
    ]);
    assert!(!escape.exists(), "a push escaped the container");
    w.ok(&["file", "delete", "f1/tmp/pushed.txt"]);
    assert!(!w
        .ok(&["exec", "f1", "--", "ls", "/tmp"])
        .contains("pushed.txt"));
    w.ok(&["delete", "-f", "f1"]);
}

#[test]
fn a_split_image_imports_with_incus_fingerprint_and_launches() {
    if !require_root("a_split_image_imports_with_incus_fingerprint_and_launches") || !have_incus() {
        return;
    }
    // every squashfs mounted, however small (warrend unpacks small ones by default)
    let w = Warrend::start_with(&[("WARREND_SQUASHFS_MOUNT_MIN_MIB", "0")]);
    admin_init(&w);
    let out = w.dir.path().join("split");
    let o = Command::new(WARREN_BUILD)
        .args(["build-incus", EXAMPLE, &out.to_string_lossy(), "--no-cache"])
        .arg("--sources-dir")
        .arg(w.dir.path().join("sources"))
        .output()
        .expect("warren-build");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (meta, rootfs) = (out.join("incus.tar.xz"), out.join("rootfs.squashfs"));
    let imported = w.ok(&[
        "image",
        "import",
        &meta.to_string_lossy(),
        &rootfs.to_string_lossy(),
        "--alias",
        "sp",
    ]);
    // Incus's fingerprint of a split image: sha256 of the metadata tarball and the rootfs, in order
    let mut both = std::fs::read(&meta).expect("meta");
    both.extend(std::fs::read(&rootfs).expect("rootfs"));
    let sum = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(&both)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    let fingerprint = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        imported.contains(&fingerprint),
        "{imported} / {fingerprint}"
    );
    w.ok(&["launch", "sp", "q1"]);
    assert_eq!(
        w.ok(&["exec", "q1", "--", "cat", "/etc/hostname"]).trim(),
        "q1"
    );
    // nothing unpacked: both stand on the image's squashfs, mounted (idmapped through warrend's
    // map for the unprivileged one), and see its files as their root's
    let images = w.dir.path().join("images");
    let is_mount = |p: &std::path::Path| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(&*p.to_string_lossy()))
    };
    w.ok(&["launch", "sp", "q2", "-c", "security.privileged=true"]);
    assert_eq!(w.ok(&["exec", "q2", "--", "id", "-u"]).trim(), "0");
    for name in ["q1", "q2"] {
        let ls = w.ok(&["exec", name, "--", "ls", "-ln", "/bin/busybox"]);
        assert!(ls.contains(" 0        0 "), "{name}: {ls}");
    }
    assert!(is_mount(&images.join(format!("{fingerprint}.mnt"))));
    assert!(!images.join(format!("{fingerprint}.tree/rootfs")).exists());
    // squashfs takes idmapped mounts only on newer kernels (not Debian 12's 6.1): there the
    // unprivileged one stands on a shifted copy, unpacked straight from the squashfs
    assert!(
        is_mount(&images.join(format!("{fingerprint}.idmapped")))
            != images.join(format!("{fingerprint}.shifted")).exists()
    );
    // after a reboot (every mount gone) the image is mounted again for its containers
    w.ok(&["stop", "-f", "q1", "q2"]);
    warren_testutil::unmount_under(&images);
    warren_testutil::unmount_under(&w.dir.path().join("containers"));
    w.ok(&["start", "q1", "q2"]);
    assert_eq!(
        w.ok(&["exec", "q1", "--", "cat", "/etc/hostname"]).trim(),
        "q1"
    );
    // deleted while in use, the image keeps its squashfs for its containers until they go
    w.ok(&["image", "delete", "sp"]);
    assert!(images.join(format!("{fingerprint}.rootfs")).exists());
    w.ok(&["restart", "-f", "q1"]);
    w.ok(&["delete", "-f", "q1", "q2"]);
    assert!(!is_mount(&images.join(format!("{fingerprint}.mnt"))));
    let left: Vec<_> = std::fs::read_dir(w.dir.path().join("images"))
        .expect("images")
        .flatten()
        .collect();
    assert!(left.is_empty(), "the image's files outlived it: {left:?}");
}
