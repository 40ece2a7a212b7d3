//! Projects driven by the real incus client: instances, profiles, images and volumes kept apart
//! per project (or shared with default, as `features.*` say), limits, and what can't change on a
//! project in use.

use warren_testutil::require_root;

mod common;
use common::*;

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn err_of(w: &Warrend, args: &[&str]) -> String {
    let o = w.incus(args);
    assert!(!o.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

#[test]
fn projects_keep_instances_profiles_images_and_volumes_apart() {
    if !require_root("projects_keep_instances_profiles_images_and_volumes_apart") || !have_incus() {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    let image = image.to_string_lossy();
    w.ok(&["image", "import", &image, "--alias", "bb"]);
    w.ok(&["launch", "bb", "c1"]);

    // a project of its own: an empty default profile, no images
    w.ok(&["project", "create", "p1", "-c", "user.team=a"]);
    let list = w.ok(&["project", "list", "--format", "csv"]);
    assert!(list.contains("p1,YES,YES,YES,"), "{list}");
    assert!(w
        .ok(&["image", "list", "--project", "p1", "--format", "csv"])
        .trim()
        .is_empty());
    let profile = w.ok(&["profile", "show", "default", "--project", "p1"]);
    assert!(profile.contains("devices: {}"), "{profile}");
    // each project lists its own profiles; the default project stays editable
    assert_eq!(
        w.ok(&[
            "profile",
            "list",
            "--project",
            "p1",
            "--format",
            "csv",
            "-c",
            "n"
        ])
        .trim(),
        "default"
    );
    assert_eq!(
        w.ok(&["profile", "list", "--format", "csv", "-c", "n"])
            .trim(),
        "default"
    );
    w.ok(&["project", "set", "default", "user.note=kept"]);
    assert_eq!(
        w.ok(&["project", "get", "default", "user.note"]).trim(),
        "kept"
    );
    // the same image and the same instance name, in p1
    w.ok(&[
        "image",
        "import",
        &image,
        "--alias",
        "bb",
        "--project",
        "p1",
    ]);
    w.ok(&[
        "profile",
        "device",
        "add",
        "default",
        "root",
        "disk",
        "path=/",
        "pool=default",
        "--project",
        "p1",
    ]);
    let images = w.ok(&["image", "list", "--all-projects", "--format", "csv"]);
    assert_eq!(
        images.lines().count(),
        2,
        "one image in each project: {images}"
    );
    w.ok(&["launch", "bb", "c1", "--project", "p1"]);
    assert!(w.dir.path().join("containers/p1_c1/rootfs").is_dir());
    let default_list = w.ok(&["list", "--format", "csv", "-c", "n"]);
    assert_eq!(default_list.trim(), "c1");
    let p1_list = w.ok(&["list", "--project", "p1", "--format", "csv", "-c", "ns"]);
    assert_eq!(p1_list.trim(), "c1,RUNNING");
    let all = w.ok(&["list", "--all-projects", "--format", "csv", "-c", "en"]);
    let mut rows: Vec<&str> = all.lines().collect();
    rows.sort();
    assert_eq!(rows, ["default,c1", "p1,c1"], "{all}");
    // inside, it is plain c1; exec, files and info reach p1's, not default's
    let hostname = w.ok(&["exec", "c1", "--project", "p1", "--", "hostname"]);
    assert_eq!(hostname.trim(), "c1");
    w.ok(&["exec", "c1", "--project", "p1", "--", "touch", "/root/mine"]);
    let o = w.incus(&["exec", "c1", "--", "test", "-e", "/root/mine"]);
    assert_eq!(o.status.code(), Some(1), "default's c1 has no such file");
    let info = w.ok(&["info", "c1", "--project", "p1"]);
    assert!(
        info.contains("Name: c1") && info.contains("Status: RUNNING"),
        "{info}"
    );
    // a custom volume of p1's
    w.ok(&[
        "storage",
        "volume",
        "create",
        "default",
        "data",
        "--project",
        "p1",
    ]);
    assert!(w
        .dir
        .path()
        .join("storage-pools/default/custom/p1_data")
        .is_dir());
    assert!(w
        .ok(&["storage", "volume", "list", "default", "--format", "csv", "-c", "n"])
        .lines()
        .all(|l| l != "data"));
    let e = err_of(
        &w,
        &[
            "storage",
            "volume",
            "move",
            "default/data",
            "default/data",
            "--project",
            "p1",
            "--target-project",
            "default",
        ],
    );
    assert!(e.contains("between projects is not supported"), "{e}");

    // a project in use can't go, nor change its features, nor be renamed
    let e = err_of(&w, &["project", "delete", "p1"]);
    assert!(
        e.contains("Only empty projects can be removed")
            && e.contains("/1.0/instances/c1?project=p1"),
        "{e}"
    );
    let e = err_of(&w, &["project", "set", "p1", "features.images=false"]);
    assert!(
        e.contains("Features can only be changed on empty projects"),
        "{e}"
    );
    let e = err_of(&w, &["project", "rename", "p1", "p9"]);
    assert!(e.contains("Only empty projects can be renamed"), "{e}");

    // a project that uses default's images and profiles, with an instance limit
    w.ok(&[
        "project",
        "create",
        "p2",
        "-c",
        "features.images=false",
        "-c",
        "features.profiles=false",
        "-c",
        "limits.instances=1",
    ]);
    w.ok(&["launch", "bb", "c2", "--project", "p2"]);
    let e = err_of(&w, &["launch", "bb", "c3", "--project", "p2"]);
    assert!(e.contains("Reached maximum number of instances"), "{e}");
    let state = w.ok(&["project", "info", "p2", "--format", "csv"]);
    assert!(state.to_lowercase().contains("instances,1,1"), "{state}");
    w.ok(&["delete", "-f", "c2", "--project", "p2"]);
    assert!(!w.dir.path().join("containers/p2_c2").exists());
    w.ok(&["project", "rename", "p2", "p3"]);
    w.ok(&["project", "delete", "p3"]);

    // bad input: one clear line, nothing changed
    let e = err_of(&w, &["project", "create", "a_b"]);
    assert!(e.contains("may not contain underscores"), "{e}");
    let e = err_of(&w, &["project", "create", "p4", "-c", "limits.disk=1GiB"]);
    assert!(
        e.contains("Unknown project config key \"limits.disk\""),
        "{e}"
    );
    let e = err_of(
        &w,
        &["project", "create", "p4", "-c", "features.networks=true"],
    );
    assert!(e.contains("features.networks"), "{e}");
    let e = err_of(&w, &["list", "--project", "nosuch"]);
    assert!(e.contains("Project \"nosuch\" not found"), "{e}");
    let e = err_of(&w, &["project", "delete", "default"]);
    assert!(e.contains("cannot be deleted"), "{e}");
    let projects = w.ok(&["project", "list", "--format", "csv", "-c", "n"]);
    assert!(
        !projects.contains("p4") && !projects.contains("a_b"),
        "{projects}"
    );

    // a stopped instance moves between projects (`incus move --target-project`), renamed or not
    w.ok(&["create", "bb", "mv", "-c", "user.moved=no"]);
    w.ok(&[
        "move",
        "mv",
        "--target-project",
        "p1",
        "-c",
        "user.moved=yes",
    ]);
    assert_eq!(
        w.ok(&["config", "get", "mv", "user.moved", "--project", "p1"])
            .trim(),
        "yes"
    );
    assert!(w.dir.path().join("containers/p1_mv/rootfs").is_dir());
    w.ok(&["start", "mv", "--project", "p1"]);
    assert_eq!(
        w.ok(&["exec", "mv", "--project", "p1", "--", "hostname"])
            .trim(),
        "mv"
    );
    let e = err_of(
        &w,
        &[
            "move",
            "mv",
            "--project",
            "p1",
            "--target-project",
            "default",
        ],
    );
    assert!(e.contains("Stop the instance before moving it"), "{e}");
    w.ok(&["stop", "-f", "mv", "--project", "p1"]);
    let e = err_of(
        &w,
        &[
            "move",
            "mv",
            "--project",
            "p1",
            "--target-project",
            "nosuch",
        ],
    );
    assert!(e.contains("Project \"nosuch\" not found"), "{e}");
    assert!(
        w.dir.path().join("containers/p1_mv").is_dir(),
        "nothing moved"
    );
    w.ok(&[
        "move",
        "mv",
        "mv2",
        "--project",
        "p1",
        "--target-project",
        "default",
    ]);
    assert!(w
        .ok(&["list", "--format", "csv", "-c", "n"])
        .lines()
        .any(|l| l == "mv2"));
    w.ok(&["delete", "mv2"]);

    // emptied, p1 goes; its image record goes, the default project's copy stays usable
    w.ok(&["delete", "-f", "c1", "--project", "p1"]);
    w.ok(&[
        "storage",
        "volume",
        "delete",
        "default",
        "data",
        "--project",
        "p1",
    ]);
    w.ok(&["image", "delete", "bb", "--project", "p1"]);
    w.ok(&["project", "delete", "p1"]);
    assert!(!w.dir.path().join("containers/p1_c1").exists());
    w.ok(&["launch", "bb", "c5"]);
    let o = w.incus(&["exec", "c5", "--", "true"]);
    assert_eq!(o.status.code(), Some(0));
    w.ok(&["delete", "-f", "c1", "c5"]);
}

/// `warren` with the test's warrend and a client config of its own.
#[test]
fn a_restricted_project_refuses_what_it_restricts() {
    if !require_root("a_restricted_project_refuses_what_it_restricts") || !have_incus() {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    let rp = ["--project", "rp"];
    w.ok(&[
        "project",
        "create",
        "rp",
        "-c",
        "features.images=false",
        "-c",
        "features.profiles=false",
        "-c",
        "restricted=true",
    ]);
    // the restrictive defaults: no privileged container, no nesting, no raw.lxc
    for (config, key) in [
        (
            "security.privileged=true",
            "restricted.containers.privilege",
        ),
        ("security.nesting=true", "restricted.containers.nesting"),
        ("raw.lxc=lxc.cap.drop =", "restricted.containers.lowlevel"),
    ] {
        let e = err_of(&w, &["launch", "bb", "bad", "-c", config, rp[0], rp[1]]);
        assert!(e.contains(key) && e.contains("restricted=true"), "{e}");
    }
    assert!(!w.dir.path().join("containers/rp_bad").exists());
    w.ok(&["launch", "bb", "c1", rp[0], rp[1]]);
    // host paths, proxies and snapshots are refused; nothing changes
    let host = w.dir.path().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    let source = format!("source={}", host.display());
    // `config device add c1 DEV KIND OPTS... --project rp`
    let device_add = |dev: &str, kind: &str, opts: &[&str]| -> Vec<String> {
        let a: Vec<String> = ["config", "device", "add", "c1", dev, kind]
            .iter()
            .chain(opts)
            .chain(&rp)
            .map(|s| s.to_string())
            .collect();
        a
    };
    let disk = device_add("d", "disk", &[&source, "path=/mnt"]);
    let e = err_of(&w, &strs(&disk));
    assert!(e.contains("restricted.devices.disk"), "{e}");
    let proxy = device_add(
        "p",
        "proxy",
        &["listen=tcp:127.0.0.1:18080", "connect=tcp:127.0.0.1:22"],
    );
    let e = err_of(&w, &strs(&proxy));
    assert!(e.contains("restricted.devices.proxy"), "{e}");
    let e = err_of(&w, &["snapshot", "create", "c1", "s0", rp[0], rp[1]]);
    assert!(e.contains("restricted.snapshots"), "{e}");
    let devices = w.ok(&["config", "device", "list", "c1", rp[0], rp[1]]);
    assert!(devices.trim().is_empty(), "{devices}");
    // what a key allows, it allows
    w.ok(&["project", "set", "rp", "restricted.snapshots=allow"]);
    w.ok(&["snapshot", "create", "c1", "s0", rp[0], rp[1]]);
    w.ok(&["project", "set", "rp", "restricted.devices.disk=allow"]);
    let paths = format!("restricted.devices.disk.paths={}", host.display());
    w.ok(&["project", "set", "rp", &paths]);
    w.ok(&strs(&disk));
    let e = err_of(
        &w,
        &strs(&device_add("e", "disk", &["source=/etc", "path=/e"])),
    );
    assert!(e.contains("restricted.devices.disk.paths"), "{e}");
    // checked again at start: a source inside the allowed path that became a symlink leading
    // out of it since
    let sub = host.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let sub_source = format!("source={}", sub.display());
    w.ok(&strs(&device_add("s", "disk", &[&sub_source, "path=/sub"])));
    w.ok(&["stop", "-f", "c1", rp[0], rp[1]]);
    std::fs::remove_dir(&sub).unwrap();
    std::os::unix::fs::symlink("/etc", &sub).unwrap();
    let e = err_of(&w, &["start", "c1", rp[0], rp[1]]);
    assert!(e.contains("restricted.devices.disk.paths"), "{e}");
    std::fs::remove_file(&sub).unwrap();
    std::fs::create_dir(&sub).unwrap();
    w.ok(&["start", "c1", rp[0], rp[1]]);
    // and pinned for the mount: the real path, mounted without following symlinks (a swap
    // after the check fails the mount instead of leading out)
    let config = std::fs::read_to_string(w.dir.path().join("containers/rp_c1/config")).unwrap();
    let real = std::fs::canonicalize(&sub).unwrap();
    assert!(
        config.lines().any(
            |l| l.starts_with(&format!("lxc.mount.entry = {} ", real.display()))
                && l.contains("nofollow")
        ),
        "{config}"
    );
    w.ok(&[
        "project",
        "set",
        "rp",
        "restricted.containers.nesting=allow",
    ]);
    w.ok(&["config", "set", "c1", "security.nesting=true", rp[0], rp[1]]);
    // tightening again is refused while an instance uses it
    let e = err_of(
        &w,
        &[
            "project",
            "set",
            "rp",
            "restricted.containers.nesting=block",
        ],
    );
    assert!(
        e.contains("\"c1\"") && e.contains("security.nesting"),
        "{e}"
    );
    assert!(w
        .ok(&["project", "get", "rp", "restricted.containers.nesting"])
        .contains("allow"));
    // a snapshot can't bring back what the project forbids now
    w.ok(&["snapshot", "create", "c1", "s1", rp[0], rp[1]]);
    w.ok(&[
        "config",
        "set",
        "c1",
        "security.nesting=false",
        rp[0],
        rp[1],
    ]);
    w.ok(&[
        "project",
        "set",
        "rp",
        "restricted.containers.nesting=block",
    ]);
    w.ok(&["stop", "-f", "c1", rp[0], rp[1]]);
    let e = err_of(&w, &["snapshot", "restore", "c1", "s1", rp[0], rp[1]]);
    assert!(e.contains("restricted.containers.nesting"), "{e}");
    assert!(w
        .ok(&["config", "get", "c1", "security.nesting", rp[0], rp[1]])
        .contains("false"));
    // a shared profile can't bring in what the project forbids
    let e = err_of(
        &w,
        &["profile", "set", "default", "security.privileged=true"],
    );
    assert!(
        e.contains("c1") && e.contains("restricted.containers.privilege"),
        "{e}"
    );
    // an instance can't carry snapshots into a project that blocks them; nothing moves
    w.ok(&["project", "set", "rp", "restricted.snapshots=block"]);
    w.ok(&["launch", "bb", "m1"]);
    w.ok(&["snapshot", "create", "m1", "ms"]);
    w.ok(&["stop", "-f", "m1"]);
    let e = err_of(&w, &["move", "m1", "--target-project", "rp"]);
    assert!(e.contains("restricted.snapshots"), "{e}");
    assert!(w.ok(&["list", "--format", "csv", "-c", "n"]).contains("m1"));
    assert!(!w.dir.path().join("containers/rp_m1").exists());
    w.ok(&["delete", "-f", "m1"]);
    w.ok(&["project", "set", "rp", "restricted.snapshots=allow"]);
    // bad values
    let e = err_of(
        &w,
        &[
            "project",
            "set",
            "rp",
            "restricted.containers.nesting=maybe",
        ],
    );
    assert!(e.contains("allow, block"), "{e}");
    let e = err_of(
        &w,
        &[
            "project",
            "set",
            "rp",
            "restricted.containers.privilege=isolated",
        ],
    );
    assert!(e.contains("security.idmap.isolated"), "{e}");
    // unrestricted, everything goes again
    w.ok(&["project", "set", "rp", "restricted=false"]);
    w.ok(&[
        "config",
        "set",
        "c1",
        "security.privileged=true",
        rp[0],
        rp[1],
    ]);

    // aggregate limits: every instance must set the key, and the sum stays under the limit
    let e = err_of(&w, &["project", "set", "rp", "limits.memory=1GiB"]);
    assert!(e.contains("\"c1\" has no limits.memory"), "{e}");
    w.ok(&["config", "set", "c1", "limits.memory=512MiB", rp[0], rp[1]]);
    w.ok(&["project", "set", "rp", "limits.memory=1GiB"]);
    let e = err_of(
        &w,
        &[
            "launch",
            "bb",
            "c2",
            "-c",
            "limits.memory=768MiB",
            rp[0],
            rp[1],
        ],
    );
    assert!(e.contains("over its limit"), "{e}");
    assert!(!w.dir.path().join("containers/rp_c2").exists());
    w.ok(&[
        "launch",
        "bb",
        "c2",
        "-c",
        "limits.memory=256MiB",
        rp[0],
        rp[1],
    ]);
    let e = err_of(
        &w,
        &["config", "set", "c2", "limits.memory=1GiB", rp[0], rp[1]],
    );
    assert!(e.contains("over its limit"), "{e}");
    let info = w.ok(&["project", "info", "rp", "--format", "csv"]);
    assert!(
        info.to_lowercase().contains("memory,1.00gib,768.00mib"),
        "{info}"
    );
    let e = err_of(&w, &["project", "set", "rp", "limits.memory=lots"]);
    assert!(e.contains("2GiB"), "{e}");
    w.ok(&["delete", "-f", "c2", rp[0], rp[1]]);
    w.ok(&["delete", "-f", "c1", rp[0], rp[1]]);
    w.ok(&["project", "delete", "rp"]);
}

/// `warren project edit dev` with `yaml` on its standard input.
fn warren_edit(w: &Warrend, yaml: &[u8]) -> std::process::Output {
    std::process::Command::new(WARREN)
        .args(["project", "edit", "dev"])
        .env("WARREN_DIR", w.dir.path())
        .env("WARREN_CONF", w.dir.path().join("warren-client"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(yaml)?;
            c.wait_with_output()
        })
        .expect("warren project edit")
}

fn warren(w: &Warrend, args: &[&str]) -> std::process::Output {
    std::process::Command::new(WARREN)
        .args(args)
        .env("WARREN_DIR", w.dir.path())
        .env("WARREN_CONF", w.dir.path().join("warren-client"))
        .output()
        .expect("warren")
}

fn warren_ok(w: &Warrend, args: &[&str]) -> String {
    let o = warren(w, args);
    assert!(
        o.status.success(),
        "warren {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn warren_err(w: &Warrend, args: &[&str]) -> String {
    let o = warren(w, args);
    assert!(!o.status.success(), "warren {args:?} succeeded");
    let e = String::from_utf8_lossy(&o.stderr).trim().to_string();
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    e
}

#[test]
fn warrens_client_switches_projects_and_works_in_them() {
    if !require_root("warrens_client_switches_projects_and_works_in_them") {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    warren_ok(
        &w,
        &["image", "import", &image.to_string_lossy(), "--alias", "bb"],
    );
    warren_ok(
        &w,
        &[
            "project",
            "create",
            "dev",
            "-c",
            "features.profiles=false",
            "-c",
            "features.images=false",
            "--description",
            "for tests",
        ],
    );
    assert_eq!(
        warren_ok(&w, &["project", "get", "dev", "features.images"]).trim(),
        "false"
    );
    let list = warren_ok(&w, &["project", "list", "--format", "csv"]);
    assert!(
        list.contains("default (current),") && list.contains("dev,NO,NO,YES,NO,for tests,0"),
        "{list}"
    );
    // --project for one command, `project switch` for the ones after
    warren_ok(&w, &["launch", "bb", "web", "--project", "dev"]);
    assert!(warren_ok(&w, &["list", "--format", "csv", "-c", "n"])
        .trim()
        .is_empty());
    warren_ok(&w, &["project", "switch", "dev"]);
    assert_eq!(warren_ok(&w, &["project", "get-current"]).trim(), "dev");
    assert_eq!(
        warren_ok(&w, &["list", "--format", "csv", "-c", "ns"]).trim(),
        "web,RUNNING"
    );
    let o = warren(&w, &["exec", "web", "--", "hostname"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "web");
    let all = warren_ok(
        &w,
        &["list", "--all-projects", "--format", "csv", "-c", "n"],
    );
    assert_eq!(all.trim(), "dev,web");
    // its config through the editor path's stdin form, and a bad key refused with nothing changed
    let o = warren_edit(
        &w,
        b"description: edited\nconfig:\n  features.images: \"false\"\n  features.profiles: \"false\"\n  features.storage.volumes: \"true\"\n  features.storage.buckets: \"true\"\n  limits.instances: 5\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shown = warren_ok(&w, &["project", "show", "dev"]);
    assert!(
        shown.contains("description: edited") && shown.contains("limits.instances: \"5\""),
        "{shown}"
    );
    // YAML that doesn't parse changes nothing
    let o = warren_edit(&w, b"config: [unclosed\n");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("nothing changed"), "{e}");
    assert!(warren_ok(&w, &["project", "show", "dev"]).contains("description: edited"));
    // an aggregate limit needs every instance to set the key
    let e = warren_err(&w, &["project", "set", "dev", "limits.cpu=2"]);
    assert!(e.contains("\"web\" has no limits.cpu"), "{e}");
    warren_ok(&w, &["config", "set", "web", "limits.memory=256MiB"]);
    warren_ok(&w, &["project", "set", "dev", "limits.memory=1GiB"]);
    let info = warren_ok(&w, &["project", "info", "dev", "--format", "csv"]);
    assert!(info.contains("MEMORY,1.00GiB,256.00MiB"), "{info}");
    warren_ok(&w, &["project", "unset", "dev", "limits.memory"]);
    let e = warren_err(&w, &["project", "switch", "nosuch"]);
    assert!(e.contains("Project \"nosuch\" not found"), "{e}");
    assert_eq!(warren_ok(&w, &["project", "get-current"]).trim(), "dev");
    let e = warren_err(&w, &["project", "delete", "dev"]);
    assert!(e.contains("Only empty projects can be removed"), "{e}");
    // a copy into default, and a move back out of it
    warren_ok(&w, &["copy", "web", "web2", "--target-project", "default"]);
    warren_ok(
        &w,
        &[
            "move",
            "web2",
            "--project",
            "default",
            "--target-project",
            "dev",
        ],
    );
    let names = warren_ok(
        &w,
        &["list", "--all-projects", "--format", "csv", "-c", "n"],
    );
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        ["dev,web", "dev,web2"],
        "{names}"
    );
    warren_ok(&w, &["delete", "-f", "web2"]);
    warren_ok(&w, &["delete", "-f", "web"]);
    warren_ok(&w, &["project", "rename", "dev", "dev2"]);
    assert_eq!(warren_ok(&w, &["project", "get-current"]).trim(), "dev2");
    warren_ok(&w, &["project", "delete", "dev2"]);
    assert_eq!(warren_ok(&w, &["project", "get-current"]).trim(), "default");
}
