//! The rest of the instance model through the real incus client: the console (attach, detach,
//! cancel), freeze, rename, profiles in use, disk devices (bind, shifted, read-only), image
//! export, the /files API, storage volumes, resources and `admin init --preseed`.

use std::io::Write;
use std::process::{Command, Stdio};
use warren_testutil::{require_root, wait_until};

mod common;
use common::*;

#[test]
fn console_freeze_rename_profiles_and_resources() {
    if !require_root("console_freeze_rename_profiles_and_resources") || !have_incus() {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    w.ok(&["launch", "bb", "m1"]);
    // state: processes, memory and CPU from the container's cgroup
    let info = w.ok(&["info", "m1"]);
    assert!(
        info.contains("Processes: ") && info.contains("Memory (current): "),
        "{info}"
    );
    assert!(!info.contains("Processes: 0"), "{info}");
    // the same figures for Prometheus, under Incus's names
    let (status, head, body) = w.raw_bytes("GET", "/1.0/metrics", &[], b"");
    let metrics = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{head}");
    for family in [
        "incus_cpu_seconds_total{name=\"m1\",project=\"default\",type=\"container\"}",
        "incus_memory_MemTotal_bytes{name=\"m1\"",
        "incus_procs_total{name=\"m1\"",
        "incus_network_receive_bytes_total{device=\"lo\",name=\"m1\"",
        "# TYPE incus_cpu_seconds_total counter",
    ] {
        assert!(metrics.contains(family), "{family} in {metrics}");
    }
    // the console: what the container writes to it arrives; ctrl-a q detaches
    let command = format!(
        "INCUS_SOCKET={} INCUS_CONF={} incus console m1",
        w.socket().display(),
        w.dir.path().join("client").display()
    );
    let (shown, exited) = console_session(
        &w,
        &command,
        "m1",
        &[
            (1500, "exec:echo written-to-the-console > /dev/console"),
            (1000, "\u{1}"),
            (300, "q"),
        ],
    );
    assert!(shown.contains("written-to-the-console"), "{shown}");
    assert!(exited, "ctrl-a q did not detach: {shown}");
    assert!(w
        .ok(&["console", "m1", "--show-log"])
        .contains("written-to-the-console"));
    // a console operation can be cancelled
    let (status, op) = w.raw(
        "POST",
        "/1.0/instances/m1/console",
        br#"{"width":80,"height":24,"type":"console"}"#,
    );
    assert_eq!(status, 202, "{op}");
    let id = op["metadata"]["id"].as_str().expect("op id").to_string();
    assert_eq!(op["metadata"]["may_cancel"], true, "{op}");
    let (status, body) = w.raw("DELETE", &format!("/1.0/operations/{id}"), b"");
    assert_eq!(status, 200, "{body}");
    let (_, done) = w.raw("GET", &format!("/1.0/operations/{id}/wait?timeout=10"), b"");
    assert_eq!(done["metadata"]["status"], "Cancelled", "{done}");
    // a finished task can't be cancelled
    let (status, body) = w.raw("DELETE", &format!("/1.0/operations/{id}"), b"");
    assert_eq!(status, 400, "{body}");
    // freeze and thaw
    w.ok(&["pause", "m1"]);
    assert!(w.ok(&["list", "-f", "csv"]).starts_with("m1,FROZEN,"));
    // server-side filters (api_filtering)
    let (_, frozen) = w.raw(
        "GET",
        "/1.0/instances?recursion=1&filter=status%20eq%20frozen%20and%20name%20eq%20m1",
        b"",
    );
    assert_eq!(frozen["metadata"][0]["name"], "m1", "{frozen}");
    let (_, none) = w.raw(
        "GET",
        "/1.0/instances?filter=not%20status%20eq%20frozen",
        b"",
    );
    assert_eq!(none["metadata"], serde_json::json!([]), "{none}");
    let (status, bad) = w.raw("GET", "/1.0/instances?filter=status%20like%20x", b"");
    assert_eq!(status, 400, "{bad}");
    w.ok(&["resume", "m1"]);
    assert!(w.ok(&["list", "-f", "csv"]).starts_with("m1,RUNNING,"));
    // rename: refused while running; a stopped one takes its snapshots along
    w.ok(&["snapshot", "create", "m1", "s0"]);
    let running = w.incus(&["rename", "m1", "m2"]);
    assert!(String::from_utf8_lossy(&running.stderr)
        .contains("Renaming of running instance not allowed"));
    w.ok(&["stop", "-f", "m1"]);
    w.ok(&["rename", "m1", "m2"]);
    assert!(w.ok(&["list", "-f", "csv"]).starts_with("m2,STOPPED,"));
    assert!(w
        .ok(&["snapshot", "list", "m2", "-f", "csv"])
        .starts_with("s0,"));
    w.ok(&["start", "m2"]);
    assert_eq!(w.ok(&["exec", "m2", "--", "hostname"]).trim(), "m2");
    // profiles: used_by, in use can't go, default can't go, renames follow into instances
    assert!(w
        .ok(&["profile", "show", "default"])
        .contains("- /1.0/instances/m2"));
    w.ok(&["profile", "create", "extra"]);
    w.ok(&["profile", "add", "m2", "extra"]);
    let in_use = w.incus(&["profile", "delete", "extra"]);
    assert!(
        String::from_utf8_lossy(&in_use.stderr).contains("currently in use"),
        "{}",
        String::from_utf8_lossy(&in_use.stderr)
    );
    let default = w.incus(&["profile", "delete", "default"]);
    assert!(String::from_utf8_lossy(&default.stderr).contains("cannot be deleted"));
    w.ok(&["profile", "rename", "extra", "more"]);
    assert!(w.ok(&["config", "show", "m2"]).contains("- more"));
    w.ok(&["profile", "remove", "m2", "more"]);
    w.ok(&["profile", "delete", "more"]);
    // storage volumes, resources
    assert!(w
        .ok(&["storage", "volume", "list", "default", "-f", "csv"])
        .contains("container,m2,"));
    let res = w.ok(&["info", "--resources"]);
    assert!(res.contains("CPU:") && res.contains("Memory:"), "{res}");
    // image export gives back the very file imported
    let export = w.dir.path().join("export");
    std::fs::create_dir(&export).expect("mkdir");
    w.ok(&["image", "export", "bb", &format!("{}/", export.display())]);
    let exported = std::fs::read_dir(&export)
        .expect("export dir")
        .flatten()
        .map(|e| e.path())
        .next()
        .expect("an exported file");
    assert_eq!(
        std::fs::read(&exported).expect("exported"),
        std::fs::read(&image).expect("image")
    );
    w.ok(&["delete", "-f", "m2"]);
}

#[test]
fn disk_devices_bind_host_paths_shifted_or_read_only() {
    if !require_root("disk_devices_bind_host_paths_shifted_or_read_only") || !have_incus() {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    let shared = w.dir.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::write(shared.join("from-host"), "hello\n").expect("write");
    w.ok(&["init", "bb", "d1"]);
    let src = format!("source={}", shared.display());
    w.ok(&[
        "config",
        "device",
        "add",
        "d1",
        "shifted",
        "disk",
        &src,
        "path=/mnt/shifted",
        "shift=true",
    ]);
    w.ok(&[
        "config",
        "device",
        "add",
        "d1",
        "plain",
        "disk",
        &src,
        "path=/mnt/ro",
        "readonly=true",
    ]);
    // bad disks are refused, nothing changes
    let before = w.ok(&["config", "show", "d1"]);
    for bad in [
        &["source=relative/path", "path=/mnt/x"][..],
        &["source=/nonexistent/warren", "path=/mnt/x"][..],
        &[&src, "path=/mnt/x", "readonly=maybe"][..],
        &[&src, "path=/mnt/x", "pool=default"][..],
    ] {
        let mut args = vec!["config", "device", "add", "d1", "bad", "disk"];
        args.extend_from_slice(bad);
        let o = w.incus(&args);
        assert!(!o.status.success(), "{bad:?} was accepted");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Device \"bad\""),
            "{bad:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert_eq!(w.ok(&["config", "show", "d1"]), before);
    w.ok(&["start", "d1"]);
    // shifted: the host's root-owned file is the container's root's, and what the container's
    // root writes is the host's root's; read-only can't be written
    let ls = w.ok(&["exec", "d1", "--", "ls", "-ln", "/mnt/shifted/from-host"]);
    assert!(ls.contains(" 0 ") && !ls.contains("65534"), "{ls}");
    w.ok(&["exec", "d1", "--", "touch", "/mnt/shifted/from-container"]);
    let md = std::fs::metadata(shared.join("from-container")).expect("written through the bind");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&md), 0);
    assert_eq!(
        w.ok(&["exec", "d1", "--", "cat", "/mnt/ro/from-host"]),
        "hello\n"
    );
    let ro = w.incus(&["exec", "d1", "--", "touch", "/mnt/ro/nope"]);
    assert!(!ro.status.success());
    assert!(!shared.join("nope").exists());
    // on a running instance, disks come and go at once (hotplug)
    w.ok(&["config", "device", "remove", "d1", "plain"]);
    let gone = w.incus(&["exec", "d1", "--", "ls", "/mnt/ro/from-host"]);
    assert!(!gone.status.success());
    let pid = w.pid("d1");
    w.ok(&[
        "config",
        "device",
        "add",
        "d1",
        "late",
        "disk",
        &src,
        "path=/srv/late/data",
        "shift=true",
        "readonly=true",
    ]);
    assert_eq!(w.pid("d1"), pid, "no restart");
    let ls = w.ok(&["exec", "d1", "--", "ls", "-ln", "/srv/late/data/from-host"]);
    assert!(ls.contains(" 0        0 "), "{ls}");
    assert!(!w
        .incus(&["exec", "d1", "--", "touch", "/srv/late/data/x"])
        .status
        .success());
    // a directory onto a file can't be mounted: refused, the config unchanged
    let before = w.ok(&["config", "show", "d1"]);
    let bad = w.incus(&[
        "config",
        "device",
        "add",
        "d1",
        "bad",
        "disk",
        &src,
        "path=/etc/hostname",
    ]);
    assert!(!bad.status.success());
    assert_eq!(w.ok(&["config", "show", "d1"]), before);
    // and after a restart the config gives the same mounts
    w.ok(&["restart", "-f", "d1"]);
    assert!(w
        .ok(&["exec", "d1", "--", "ls", "/srv/late/data"])
        .contains("from-host"));
    w.ok(&["config", "device", "remove", "d1", "late"]);
    assert!(!w
        .incus(&["exec", "d1", "--", "ls", "/srv/late/data/from-host"])
        .status
        .success());
    w.ok(&["delete", "-f", "d1"]);
}

#[test]
fn the_files_api_stays_inside_the_container() {
    if !require_root("the_files_api_stays_inside_the_container") || !have_incus() {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    w.ok(&["launch", "bb", "f2"]);
    let (status, _, body) = w.raw_bytes(
        "POST",
        "/1.0/instances/f2/files?path=/tmp/new.txt",
        &[("X-Incus-uid", "5"), ("X-Incus-mode", "0600")],
        b"via the files API\n",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(w
        .ok(&["exec", "f2", "--", "ls", "-ln", "/tmp/new.txt"])
        .starts_with("-rw-------    1 5 "));
    let (status, head, body) =
        w.raw_bytes("GET", "/1.0/instances/f2/files?path=/tmp/new.txt", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(body, b"via the files API\n");
    assert!(
        head.contains("X-Incus-uid: 5") && head.contains("X-Incus-mode: 0600"),
        "{head}"
    );
    let (_, head, body) = w.raw_bytes("GET", "/1.0/instances/f2/files?path=/etc", &[], b"");
    assert!(head.contains("X-Incus-type: directory"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("\"hostname\""));
    // a symlink to a host path, written through: the container's file changes, the host's doesn't
    let host = w.dir.path().join("host-file");
    std::fs::write(&host, "host\n").expect("write");
    w.ok(&[
        "exec",
        "f2",
        "--",
        "ln",
        "-s",
        &host.to_string_lossy(),
        "/tmp/link",
    ]);
    let (status, _, _) = w.raw_bytes(
        "POST",
        "/1.0/instances/f2/files?path=/tmp/link",
        &[],
        b"container\n",
    );
    // the link's target directory exists on the host only
    assert_eq!(status, 404);
    assert_eq!(std::fs::read_to_string(&host).expect("host"), "host\n");
    let (status, _, _) = w.raw_bytes(
        "POST",
        "/1.0/instances/f2/files?path=/../../../../tmp/warren-files-escape",
        &[],
        b"x",
    );
    assert_eq!(status, 200, "resolved inside the container");
    assert!(!std::path::Path::new("/tmp/warren-files-escape").exists());
    // bad headers, missing path
    let (status, _, _) = w.raw_bytes(
        "POST",
        "/1.0/instances/f2/files?path=/tmp/x",
        &[("X-Incus-mode", "rwx")],
        b"",
    );
    assert_eq!(status, 400);
    let (status, _, _) = w.raw_bytes("GET", "/1.0/instances/f2/files", &[], b"");
    assert_eq!(status, 400);
    let (status, _, _) = w.raw_bytes(
        "DELETE",
        "/1.0/instances/f2/files?path=/tmp/new.txt",
        &[],
        b"",
    );
    assert_eq!(status, 200);
    let (status, _, _) = w.raw_bytes("GET", "/1.0/instances/f2/files?path=/tmp/new.txt", &[], b"");
    assert_eq!(status, 404);
    w.ok(&["delete", "-f", "f2"]);
    // a project that doesn't exist: refused, not quietly the default one
    let other = w.incus(&["launch", "bb", "f3", "--project", "p1"]);
    assert!(
        !other.status.success()
            && String::from_utf8_lossy(&other.stderr).contains("Project \"p1\" not found"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    assert!(!w.ok(&["list", "-f", "csv"]).contains("f3"));
}

#[test]
fn admin_init_takes_incus_preseed_yaml() {
    if !require_root("admin_init_takes_incus_preseed_yaml") {
        return;
    }
    let w = Warrend::start();
    let preseed = |yaml: &str| {
        let mut child = Command::new(WARREN)
            .args(["admin", "init", "--preseed"])
            .env("WARREN_DIR", w.dir.path())
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("warren");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(yaml.as_bytes())
            .expect("write");
        child.wait_with_output().expect("wait")
    };
    let o = preseed(
        "storage_pools:\n- name: default\n  driver: dir\nprofiles:\n- name: default\n  devices:\n    root: {path: /, pool: default, type: disk}\n- name: small\n  config:\n    limits.cpu: 1\n    limits.memory: 128MiB\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, small) = w.raw("GET", "/1.0/profiles/small", b"");
    assert_eq!(small["metadata"]["config"]["limits.cpu"], "1", "{small}");
    let (_, default) = w.raw("GET", "/1.0/profiles/default", b"");
    assert_eq!(
        default["metadata"]["devices"]["root"]["pool"], "default",
        "{default}"
    );
    // applied again: nothing to do, no error
    let o = preseed("storage_pools:\n- name: default\n  driver: dir\n");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (yaml, says) in [
        ("profiles: [\n", "line "),
        (
            "networks:\n- name: wpre0\n  config:\n    ipv4.address: bogus\n",
            "Invalid value for network ipv4.address",
        ),
        ("nonsense: 1\n", "nonsense"),
        (
            "storage_pools:\n- name: z\n  driver: zfs\n",
            "driver \"zfs\" is not supported",
        ),
    ] {
        let o = preseed(yaml);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{yaml}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn containers_stand_on_one_shared_image_layer() {
    if !require_root("containers_stand_on_one_shared_image_layer") || !have_incus() {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    w.ok(&["launch", "bb", "o1"]);
    w.ok(&["launch", "bb", "o2"]);
    let c1 = w.dir.path().join("containers/o1");
    // the container's writes go to its own layer; the image's tree is never written
    w.ok(&[
        "exec",
        "o1",
        "--",
        "sh",
        "-c",
        "echo mine > /root/note; rm /etc/motd",
    ]);
    assert!(c1.join("overlay/upper/root/note").is_file());
    assert!(w.ok(&["exec", "o2", "--", "ls", "/etc"]).contains("motd"));
    assert!(!w
        .incus(&["exec", "o2", "--", "ls", "/root/note"])
        .status
        .success());
    // the container's root owns what it sees, as in a copied rootfs
    let ls = w.ok(&[
        "exec",
        "o1",
        "--",
        "ls",
        "-lnd",
        "/",
        "/etc/passwd",
        "/root/note",
    ]);
    assert_eq!(ls.matches(" 0        0 ").count(), 3, "{ls}");
    // after a reboot the overlay isn't mounted: the next start mounts it again
    w.ok(&["stop", "-f", "o1"]);
    let umount = Command::new("umount")
        .arg(c1.join("rootfs"))
        .status()
        .expect("umount");
    assert!(umount.success());
    w.ok(&["start", "o1"]);
    assert_eq!(w.ok(&["exec", "o1", "--", "cat", "/root/note"]), "mine\n");
    // privileged and back: the rootfs is shifted to match, files keep their owners
    w.ok(&["config", "set", "o1", "security.privileged=true"]);
    w.ok(&["restart", "-f", "o1"]);
    let pid = w.ok(&["info", "o1"]);
    assert!(pid.contains("Status: RUNNING"), "{pid}");
    assert!(!c1.join("rootfs.shifted").exists());
    assert_eq!(
        w.ok(&["exec", "o1", "--", "ls", "-lnd", "/root/note"])
            .matches(" 0        0 ")
            .count(),
        1
    );
    w.ok(&["config", "set", "o1", "security.privileged=false"]);
    w.ok(&["restart", "-f", "o1"]);
    assert!(c1.join("rootfs.shifted").exists());
    assert_eq!(
        w.ok(&["exec", "o1", "--", "ls", "-lnd", "/root/note"])
            .matches(" 0        0 ")
            .count(),
        1
    );
    // a snapshot restored makes the rootfs a plain directory with the same content
    w.ok(&["snapshot", "create", "o1", "s0"]);
    w.ok(&["exec", "o1", "--", "rm", "/root/note"]);
    w.ok(&["stop", "-f", "o1"]);
    w.ok(&["snapshot", "restore", "o1", "s0"]);
    assert!(!c1.join("overlay").exists());
    w.ok(&["start", "o1"]);
    assert_eq!(w.ok(&["exec", "o1", "--", "cat", "/root/note"]), "mine\n");
    // the image can go while containers stand on it: its tree goes with the last of them
    let fp = w
        .ok(&["image", "list", "-f", "csv", "-c", "F"])
        .trim()
        .to_string();
    w.ok(&["image", "delete", "bb"]);
    let trees: Vec<_> = std::fs::read_dir(w.dir.path().join("images"))
        .expect("images")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tree"))
        .collect();
    assert_eq!(trees.len(), 1, "o2 still needs the tree");
    w.ok(&["restart", "-f", "o2"]);
    w.ok(&["delete", "-f", "o1", "o2"]);
    assert!(
        std::fs::read_dir(w.dir.path().join("images"))
            .expect("images")
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with(&fp[..12])),
        "the image's trees are gone"
    );
}

#[test]
fn environment_keys_and_nesting() {
    if !require_root("environment_keys_and_nesting") || !have_incus() {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    w.ok(&[
        "launch",
        "bb",
        "e1",
        "-c",
        "environment.GREETING=hello there",
        "-c",
        "security.nesting=true",
    ]);
    // exec gets the instance's environment, under the client's own --env
    assert_eq!(
        w.ok(&["exec", "e1", "--", "sh", "-c", "echo $GREETING"]),
        "hello there\n"
    );
    assert_eq!(
        w.ok(&[
            "exec",
            "e1",
            "--env",
            "GREETING=from the client",
            "--",
            "sh",
            "-c",
            "echo $GREETING"
        ]),
        "from the client\n"
    );
    // and so does init
    assert!(w
        .ok(&["exec", "e1", "--", "cat", "/proc/1/environ"])
        .contains("GREETING=hello there"));
    // nesting: /sys writable, uncovered proc and sysfs, and a nested container's own proc mounts
    let mounts = w.ok(&["exec", "e1", "--", "cat", "/proc/self/mountinfo"]);
    let sys = mounts
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/sys"))
        .expect("/sys");
    assert!(
        sys.split_whitespace()
            .nth(5)
            .is_some_and(|o| o.starts_with("rw")),
        "{sys}"
    );
    assert!(mounts.contains(" /dev/.lxc/proc "), "{mounts}");
    let nested = w.incus(&[
        "exec",
        "e1",
        "--",
        "unshare",
        "-U",
        "-r",
        "-m",
        "-p",
        "-f",
        "--mount-proc",
        "sh",
        "-c",
        "echo $$",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&nested.stdout).trim(),
        "1",
        "{}",
        String::from_utf8_lossy(&nested.stderr)
    );
    // a bad environment key or value is refused
    let bad = w.incus(&["config", "set", "e1", "environment.A=B", "x"]);
    assert!(!bad.status.success());
    w.ok(&["delete", "-f", "e1"]);
}

#[test]
fn custom_storage_volumes_are_created_attached_and_deleted() {
    if !require_root("custom_storage_volumes_are_created_attached_and_deleted") || !have_incus() {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    // a second pool whose source is elsewhere
    let elsewhere = w.dir.path().join("elsewhere");
    w.ok(&[
        "storage",
        "create",
        "p2",
        "dir",
        &format!("source={}", elsewhere.display()),
    ]);
    w.ok(&["storage", "volume", "create", "p2", "data"]);
    assert!(elsewhere.join("custom/data").is_dir());
    let dup = w.incus(&["storage", "volume", "create", "p2", "data"]);
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let bad = w.incus(&["storage", "volume", "create", "p2", "v2", "size=1GiB"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("Unknown configuration key: size"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    w.ok(&["launch", "bb", "v1"]);
    w.ok(&["storage", "volume", "attach", "p2", "data", "v1", "/data"]);
    let missing = w.incus(&[
        "config",
        "device",
        "add",
        "v1",
        "x",
        "disk",
        "pool=p2",
        "source=nosuch",
        "path=/x",
    ]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("doesn't exist in pool"));
    w.ok(&["restart", "-f", "v1"]);
    // the container's root owns the volume and what it writes there
    let ls = w.ok(&["exec", "v1", "--", "ls", "-lnd", "/data"]);
    assert!(ls.contains(" 0        0 "), "{ls}");
    w.ok(&["exec", "v1", "--", "sh", "-c", "echo kept > /data/file"]);
    let list = w.ok(&["storage", "volume", "list", "p2", "-f", "csv"]);
    assert!(list.contains("custom,data,,filesystem,1"), "{list}");
    // in use: it can't go, nor can its pool
    assert!(!w
        .incus(&["storage", "volume", "delete", "p2", "data"])
        .status
        .success());
    assert!(!w.incus(&["storage", "delete", "p2"]).status.success());
    w.ok(&["storage", "volume", "detach", "p2", "data", "v1"]);
    w.ok(&["storage", "volume", "rename", "p2", "data", "kept"]);
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("custom/kept/file")).expect("file"),
        "kept\n"
    );
    w.ok(&["storage", "volume", "delete", "p2", "kept"]);
    assert!(!elsewhere.join("custom/kept").exists());
    w.ok(&["delete", "-f", "v1"]);
    w.ok(&["storage", "delete", "p2"]);
}

#[test]
fn shutdown_stops_instances_cleanly_and_autostart_brings_them_back() {
    if !require_root("shutdown_stops_instances_cleanly_and_autostart_brings_them_back")
        || !have_incus()
    {
        return;
    }
    let mut w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    w.ok(&["launch", "bb", "a1"]); // running at shutdown: comes back
    w.ok(&["launch", "bb", "a2", "-c", "boot.autostart=false"]); // never comes back
    w.ok(&["init", "bb", "a3", "-c", "boot.autostart=true"]); // stopped, but autostarts
    let bad = w.incus(&["config", "set", "a1", "boot.autostart.delay=soon"]);
    assert!(!bad.status.success());
    // warrend shutdown: every instance stopped, warrend gone
    let o = Command::new(WARREND)
        .arg("shutdown")
        .env("WARREN_DIR", w.dir.path())
        .output()
        .expect("warrend shutdown");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(warren_testutil::wait_until(10, || {
        std::os::unix::net::UnixStream::connect(w.socket()).is_err()
    }));
    for name in ["a1", "a2", "a3"] {
        let st = Command::new(LXC)
            .args(["info", "-P"])
            .arg(w.dir.path().join("containers"))
            .args(["-n", name, "-sH"])
            .output()
            .expect("warren-lxc info");
        assert_eq!(
            String::from_utf8_lossy(&st.stdout).trim(),
            "STOPPED",
            "{name}"
        );
    }
    // the next start: a1 (ran) and a3 (autostart) come back, a2 doesn't
    w.restart();
    assert!(
        warren_testutil::wait_until(20, || {
            let list = w.ok(&["list", "-f", "csv", "-c", "ns"]);
            list.contains("a1,RUNNING") && list.contains("a3,RUNNING")
        }),
        "{}",
        w.ok(&["list", "-f", "csv"])
    );
    assert!(w
        .ok(&["list", "-f", "csv", "-c", "ns"])
        .contains("a2,STOPPED"));
    // SIGPWR does the same
    let pid = w.pid_of_daemon();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGPWR,
    )
    .expect("SIGPWR");
    assert!(warren_testutil::wait_until(20, || {
        std::os::unix::net::UnixStream::connect(w.socket()).is_err()
    }));
    w.restart();
    assert!(warren_testutil::wait_until(20, || w
        .ok(&["list", "-f", "csv", "-c", "ns"])
        .contains("a1,RUNNING")));
    w.ok(&["delete", "-f", "a1", "a2", "a3"]);
}

/// A port nothing listens on now.
#[test]
fn unix_devices_and_proxies() {
    if !require_root("unix_devices_and_proxies") || !have_incus() {
        return;
    }
    use std::io::Read;
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    w.ok(&["launch", "bb", "u1"]);
    // a host character device, as a node of the container's root
    w.ok(&[
        "config",
        "device",
        "add",
        "u1",
        "zero",
        "unix-char",
        "source=/dev/zero",
        "path=/dev/myzero",
        "mode=0666",
    ]);
    for bad in [
        &["source=dev/zero"][..],
        &["source=/dev/zero", "mode=999"][..],
        &["source=/dev/zero", "major=x"][..],
        &["nosuch=1", "source=/dev/zero"][..],
    ] {
        let mut args = vec!["config", "device", "add", "u1", "bad", "unix-char"];
        args.extend_from_slice(bad);
        assert!(!w.incus(&args).status.success(), "{bad:?} accepted");
    }
    // added to the running container, it is there at once (hotplug), and after a restart
    let pid = w.pid("u1");
    let check = || {
        let ls = w.ok(&["exec", "u1", "--", "ls", "-ln", "/dev/myzero"]);
        assert!(
            ls.starts_with("crw-rw-rw-") && ls.contains(" 0        0 ") && ls.contains("1,   5"),
            "{ls}"
        );
        assert_eq!(
            w.ok(&[
                "exec",
                "u1",
                "--",
                "sh",
                "-c",
                "head -c 3 /dev/myzero | od -An -tx1"
            ])
            .trim(),
            "00 00 00"
        );
    };
    check();
    assert_eq!(w.pid("u1"), pid, "no restart");
    w.ok(&["restart", "-f", "u1"]);
    check();
    // removed from the running container, it goes at once
    w.ok(&["config", "device", "remove", "u1", "zero"]);
    assert!(!w
        .incus(&["exec", "u1", "--", "ls", "/dev/myzero"])
        .status
        .success());
    // a required device missing on the host: refused on the running container (the config
    // unchanged), and a clear error at start
    let before = w.ok(&["config", "show", "u1"]);
    let refused = w.incus(&[
        "config",
        "device",
        "add",
        "u1",
        "gone",
        "unix-char",
        "source=/dev/warren-nosuch",
    ]);
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("no unix-char device at /dev/warren-nosuch"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(w.ok(&["config", "show", "u1"]), before);
    w.ok(&["stop", "-f", "u1"]);
    w.ok(&[
        "config",
        "device",
        "add",
        "u1",
        "gone",
        "unix-char",
        "source=/dev/warren-nosuch",
    ]);
    let bad = w.incus(&["start", "u1"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("no unix-char device at /dev/warren-nosuch"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    w.ok(&["config", "device", "remove", "u1", "gone"]);
    w.ok(&["start", "u1"]);
    // proxy, bind=host: a host port reaches a server inside the container
    w.ok(&[
        "exec",
        "u1",
        "--",
        "sh",
        "-c",
        "mkdir -p /www && echo served-inside > /www/f && httpd -p 127.0.0.1:8080 -h /www",
    ]);
    let host_port = free_port();
    w.ok(&[
        "config",
        "device",
        "add",
        "u1",
        "web",
        "proxy",
        &format!("listen=tcp:127.0.0.1:{host_port}"),
        "connect=tcp:127.0.0.1:8080",
    ]);
    let mut body = String::new();
    assert!(
        wait_until(10, || {
            body.clear();
            std::net::TcpStream::connect(("127.0.0.1", host_port))
                .and_then(|mut s| {
                    std::io::Write::write_all(&mut s, b"GET /f HTTP/1.0\r\n\r\n")?;
                    s.read_to_string(&mut body)
                })
                .is_ok()
                && body.contains("served-inside")
        }),
        "{body}"
    );
    // bind=container: a port inside the container reaches a server on the host
    let back = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let back_port = back.local_addr().expect("addr").port();
    w.ok(&[
        "config",
        "device",
        "add",
        "u1",
        "back",
        "proxy",
        "bind=container",
        "listen=tcp:127.0.0.1:9000",
        &format!("connect=tcp:127.0.0.1:{back_port}"),
    ]);
    assert!(wait_until(10, || w
        .incus(&[
            "exec",
            "u1",
            "--",
            "sh",
            "-c",
            "echo from-inside | nc 127.0.0.1 9000"
        ])
        .status
        .success()));
    let (mut conn, _) = back.accept().expect("accept");
    let mut got = String::new();
    conn.read_to_string(&mut got).expect("read");
    assert_eq!(got, "from-inside\n");
    let bad = w.incus(&[
        "config",
        "device",
        "add",
        "u1",
        "p",
        "proxy",
        "listen=udp:1.2.3.4:5",
        "connect=tcp:127.0.0.1:1",
    ]);
    assert!(!bad.status.success());
    // stopped: the host port is closed again
    w.ok(&["stop", "-f", "u1"]);
    assert!(wait_until(5, || std::net::TcpStream::connect((
        "127.0.0.1",
        host_port
    ))
    .is_err()));
    w.ok(&["delete", "-f", "u1"]);
    assert!(!w.dir.path().join("devices/u1").exists());
}

/// A profile's devices follow it: added to or removed from the profile, they reach its running
/// instances at once and its stopped ones at their next start; a change one instance can't take
/// changes nothing anywhere.
#[test]
fn profile_device_changes_reach_their_instances() {
    if !require_root("profile_device_changes_reach_their_instances") || !have_incus() {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    let shared = w.dir.path().join("shared");
    std::fs::create_dir_all(&shared).expect("mkdir");
    std::fs::write(shared.join("note"), "from the profile\n").expect("write");
    w.ok(&["launch", "bb", "p1"]);
    w.ok(&["init", "bb", "p2"]);
    let pid = w.pid("p1");
    let source = format!("source={}", shared.display());
    w.ok(&[
        "profile",
        "device",
        "add",
        "default",
        "notes",
        "disk",
        &source,
        "path=/mnt/notes",
    ]);
    assert_eq!(w.pid("p1"), pid, "no restart");
    assert_eq!(
        w.ok(&["exec", "p1", "--", "cat", "/mnt/notes/note"]),
        "from the profile\n"
    );
    w.ok(&["start", "p2"]);
    assert_eq!(
        w.ok(&["exec", "p2", "--", "cat", "/mnt/notes/note"]),
        "from the profile\n"
    );
    // a device p1 and p2 can't take (a directory onto a file): refused, the profile unchanged
    let before = w.ok(&["profile", "show", "default"]);
    let bad = w.incus(&[
        "profile",
        "device",
        "add",
        "default",
        "bad",
        "disk",
        &source,
        "path=/etc/hostname",
    ]);
    assert!(!bad.status.success());
    assert_eq!(w.ok(&["profile", "show", "default"]), before);
    assert!(w
        .ok(&["exec", "p1", "--", "ls", "/mnt/notes"])
        .contains("note"));
    w.ok(&["profile", "device", "remove", "default", "notes"]);
    for name in ["p1", "p2"] {
        assert!(!w
            .incus(&["exec", name, "--", "ls", "/mnt/notes/note"])
            .status
            .success());
    }
    w.ok(&["delete", "-f", "p1", "p2"]);
}

/// Limits set on a running instance take effect at once, in its cgroup (the container sees
/// them), and go when unset; a limit the cgroup refuses changes nothing.
#[test]
fn limits_change_on_a_running_instance() {
    if !require_root("limits_change_on_a_running_instance") || !have_incus() {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    w.ok(&["launch", "bb", "l1"]);
    let pid = w.pid("l1");
    let seen = |file_v1: &str, file_v2: &str| {
        w.ok(&[
            "exec",
            "l1",
            "--",
            "sh",
            "-c",
            &format!("cat /sys/fs/cgroup/{file_v2} 2>/dev/null || cat /sys/fs/cgroup/{file_v1}"),
        ])
        .trim()
        .to_string()
    };
    w.ok(&["config", "set", "l1", "limits.memory", "64MiB"]);
    w.ok(&["config", "set", "l1", "limits.processes", "77"]);
    assert_eq!(w.pid("l1"), pid, "no restart");
    assert_eq!(
        seen("memory/memory.limit_in_bytes", "memory.max"),
        "67108864"
    );
    assert_eq!(seen("pids/pids.max", "pids.max"), "77");
    // more processes than that can't start
    let many = w.incus(&[
        "exec",
        "l1",
        "--",
        "sh",
        "-c",
        "for i in $(seq 100); do sleep 1 & done; wait",
    ]);
    assert!(!many.status.success());
    w.ok(&["config", "unset", "l1", "limits.processes"]);
    assert_eq!(seen("pids/pids.max", "pids.max"), "max");
    // below what it uses: refused by the kernel, the config unchanged
    let before = w.ok(&["config", "show", "l1"]);
    let tight = w.incus(&["config", "set", "l1", "limits.memory", "4KiB"]);
    if !tight.status.success() {
        assert_eq!(w.ok(&["config", "show", "l1"]), before);
        assert_eq!(
            seen("memory/memory.limit_in_bytes", "memory.max"),
            "67108864"
        );
    }
    w.ok(&["delete", "-f", "l1"]);
}
