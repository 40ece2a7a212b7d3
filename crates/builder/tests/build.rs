//! Builds for real: a busybox definition makes every output, reproducibly, and its LXC image starts
//! under warren-lxc; alpinelinux-http verifies a mirror's checksum and signature.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use warren_testutil::{require_root, unique_name, HttpDir, Lxc};

const BIN: &str = env!("CARGO_BIN_EXE_warren-build");
const LXC_BIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/debug/warren-lxc");
const BUSYBOX_DEF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/busybox.yaml");

fn build(args: &[&str], dir: &Path, epoch: &str) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .arg("--step-cache")
        .arg(dir.join("step-cache"))
        .env("SOURCE_DATE_EPOCH", epoch);
    // (pack-* never download, so they take no --sources-dir, as in distrobuilder)
    if args.first().is_some_and(|a| a.starts_with("build")) {
        c.arg("--sources-dir").arg(dir.join("sources"));
    }
    c.output().expect("run warren-build")
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn tar_cat(archive: &Path, member: &str) -> String {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(member)
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "{member} in {}: {}",
        archive.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn busybox_definition_builds_every_output_reproducibly_and_starts_under_warren_lxc() {
    if !require_root("busybox_definition_builds_every_output") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let out1 = tmp.path().join("one");
    let out2 = tmp.path().join("two");
    for out in [&out1, &out2] {
        let r = build(
            &["build-all", BUSYBOX_DEF, &out.to_string_lossy()],
            tmp.path(),
            "1790000000",
        );
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    for f in [
        "rootfs.tar.xz",
        "meta.tar.xz",
        "incus.tar.xz",
        "rootfs.squashfs",
    ] {
        assert_eq!(
            sha256(&out1.join(f)),
            sha256(&out2.join(f)),
            "{f} is not reproducible"
        );
    }
    let meta = out1.join("meta.tar.xz");
    assert_eq!(tar_cat(&meta, "templates"), "/etc/hostname\n/etc/hosts\n");
    assert!(tar_cat(&meta, "config").contains("lxc.arch = linux64"));
    assert!(tar_cat(&meta, "config-user").contains("userns.conf"));
    assert!(tar_cat(&meta, "config.4").contains("busybox.common.conf"));
    assert!(tar_cat(&meta, "create-message").contains("BusyBox 1.35"));
    let rootfs = out1.join("rootfs.tar.xz");
    assert_eq!(tar_cat(&rootfs, "./etc/hostname"), "LXC_NAME\n");
    assert!(
        tar_cat(&rootfs, "./root/post-files").starts_with("busybox-1.35-"),
        "post-files ran, rendered"
    );
    assert!(
        tar_cat(&rootfs, "./root/post-unpack").starts_with("post-unpack distrobuilder"),
        "sandbox hostname"
    );
    let listing = Command::new("tar")
        .arg("-tvf")
        .arg(&rootfs)
        .arg("./etc/motd")
        .output()
        .expect("tar");
    assert!(
        String::from_utf8_lossy(&listing.stdout).starts_with("-rw-------"),
        "mode 0600 from an unquoted 0600"
    );
    let metadata = tar_cat(&out1.join("incus.tar.xz"), "metadata.yaml");
    assert!(
        metadata.contains("creation_date: 1790000000")
            && metadata.contains("template: \"issue.tpl\""),
        "{metadata}"
    );
    assert_eq!(
        tar_cat(&out1.join("incus.tar.xz"), "templates/hostname.tpl"),
        "{{ container.name }}\n"
    );

    // The LXC image, through warren-lxc's local template, starts and runs a command.
    let lxc = Lxc::new(LXC_BIN);
    let name = unique_name("wb");
    let conf = tmp.path().join("empty-net.conf");
    std::fs::write(&conf, "lxc.net.0.type = empty\n").expect("write config");
    let r = lxc
        .cmd("create")
        .args(["-n", &name, "-f"])
        .arg(&conf)
        .args(["-t", "local", "--", "--metadata"])
        .arg(&meta)
        .arg("--fstree")
        .arg(&rootfs)
        .output()
        .expect("create");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let r = lxc
        .cmd("start")
        .args(["-n", &name])
        .output()
        .expect("start");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let r = lxc
        .cmd("attach")
        .args(["-n", &name, "--", "cat", "/etc/hostname", "/etc/motd"])
        .output()
        .expect("attach");
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        format!("{name}\nbuilt busybox/1.35 x86_64\n")
    );
    let _ = lxc.cmd("stop").args(["-n", &name, "-k"]).output();
}

#[test]
fn a_build_leaves_no_mount_and_bad_input_changes_nothing() {
    if !require_root("a_build_leaves_no_mount") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let target = tmp.path().join("rootfs");
    let r = build(
        &["build-dir", BUSYBOX_DEF, &target.to_string_lossy()],
        tmp.path(),
        "1790000000",
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(target.join("bin/busybox").is_file());
    assert!(
        !target.join("root/post-files").exists(),
        "post-files is for images, or --with-post-files"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(
        !mounts.contains(&*tmp.path().to_string_lossy()),
        "a mount was left behind:\n{mounts}"
    );
    // split Incus images can't be bzip2: refused before any work
    let out = tmp.path().join("bz");
    let r = build(
        &[
            "build-incus",
            BUSYBOX_DEF,
            &out.to_string_lossy(),
            "--compression",
            "bzip2",
        ],
        tmp.path(),
        "1790000000",
    );
    assert!(!r.status.success());
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("can't compress a squashfs"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}

/// A mirror on 127.0.0.1 with a minirootfs, its sha256 and a detached signature by a key made here.
/// A mirror on 127.0.0.1 with a minirootfs, its sha256 and a detached signature by a key made here.
struct Mirror {
    dir: tempfile::TempDir,
    _server: HttpDir,
    port: u16,
    armored_key: String,
}

fn sh(cmd: &str, dir: &Path, gnupg: &Path) -> String {
    let out = Command::new("sh")
        .arg("-ec")
        .arg(cmd)
        .current_dir(dir)
        .env("GNUPGHOME", gnupg)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mirror() -> Mirror {
    let dir = tempfile::tempdir().expect("tempdir");
    let gnupg = dir.path().join("gnupg");
    std::fs::create_dir_all(&gnupg).expect("gnupg");
    let rel = dir.path().join("v3.20/releases/x86_64");
    std::fs::create_dir_all(&rel).expect("mirror dirs");
    sh(
        "mkdir -p root/bin root/etc && cp /bin/busybox root/bin/ && ln -s busybox root/bin/sh && echo 3.20.3 > root/etc/alpine-release && \
         tar -C root -czf v3.20/releases/x86_64/alpine-minirootfs-3.20.3-x86_64.tar.gz . && \
         cd v3.20/releases/x86_64 && sha256sum alpine-minirootfs-3.20.3-x86_64.tar.gz > alpine-minirootfs-3.20.3-x86_64.tar.gz.sha256 && \
         gpg --batch --passphrase '' --quick-gen-key 'Test Alpine Signer <signer@example.invalid>' ed25519 sign never 2>/dev/null && \
         gpg --batch --armor --detach-sign alpine-minirootfs-3.20.3-x86_64.tar.gz",
        dir.path(),
        &gnupg,
    );
    let armored_key = sh("gpg --batch --armor --export", dir.path(), &gnupg);
    let server = HttpDir::serve(dir.path());
    let port = server.port;
    Mirror {
        dir,
        _server: server,
        port,
        armored_key,
    }
}

/// The seed's test.yaml, its URL pointed at the test's mirror, with the test's key when `keys`.
fn alpine_def(port: u16, key: Option<&str>) -> String {
    let mut d = format!(
        "image:\n  distribution: test\n  release: 3.20\nsource:\n  downloader: alpinelinux-http\n  url: http://127.0.0.1:{port}/\n"
    );
    if let Some(key) = key {
        d.push_str("  keys:\n  - |-\n");
        for l in key.lines() {
            d.push_str(&format!("    {l}\n"));
        }
    }
    d.push_str("packages:\n  manager: apk\n");
    d
}

#[test]
fn the_seeds_test_yaml_builds_from_a_local_mirror_with_checksum_and_signature_checked() {
    if !require_root("alpinelinux_http_verifies") {
        return;
    }
    let m = mirror();
    let tmp = tempfile::tempdir().expect("tempdir");
    let def = tmp.path().join("test.yaml");
    std::fs::write(&def, alpine_def(m.port, Some(&m.armored_key))).expect("write def");
    let target = tmp.path().join("test");
    let r = build(
        &[
            "build-dir",
            &def.to_string_lossy(),
            &target.to_string_lossy(),
        ],
        tmp.path(),
        "1790000000",
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(
        std::fs::read_to_string(target.join("etc/alpine-release")).unwrap_or_default(),
        "3.20.3\n"
    );
    let cached = tmp
        .path()
        .join("sources/test-3.20-x86_64/alpine-minirootfs-3.20.3-x86_64.tar.gz");
    assert!(
        cached.is_file(),
        "downloaded into the sources dir as the seed describes"
    );

    // A key that didn't sign it: refused, naming the file.
    let other_key = {
        let gnupg = tmp.path().join("other-gnupg");
        std::fs::create_dir_all(&gnupg).expect("gnupg");
        sh("gpg --batch --passphrase '' --quick-gen-key 'Someone Else <else@example.invalid>' ed25519 sign never 2>/dev/null", tmp.path(), &gnupg);
        sh("gpg --batch --armor --export", tmp.path(), &gnupg)
    };
    std::fs::write(&def, alpine_def(m.port, Some(&other_key))).expect("write def");
    let t4 = tmp.path().join("t4");
    let r = Command::new(BIN)
        .args([
            "build-dir",
            &def.to_string_lossy(),
            &t4.to_string_lossy(),
            "--sources-dir",
            &tmp.path().join("src4").to_string_lossy(),
            "--no-cache",
        ])
        .output()
        .expect("run");
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success()
            && e.contains("OpenPGP signature check failed")
            && e.contains("not signed by any key in source.keys"),
        "{e}"
    );
    assert!(
        !t4.join("etc/alpine-release").exists(),
        "nothing unpacked from an unverified tarball"
    );

    // Plain HTTP without keys: refused, and --insecure lets it through with a warning.
    std::fs::write(&def, alpine_def(m.port, None)).expect("write def");
    let t2 = tmp.path().join("t2");
    let r = build(
        &["build-dir", &def.to_string_lossy(), &t2.to_string_lossy()],
        tmp.path(),
        "1790000000",
    );
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && e.contains("plain HTTP") && e.contains("--insecure"),
        "{e}"
    );
    let r = build(
        &[
            "build-dir",
            &def.to_string_lossy(),
            &t2.to_string_lossy(),
            "--insecure",
        ],
        tmp.path(),
        "1790000000",
    );
    assert!(
        r.status.success() && String::from_utf8_lossy(&r.stderr).contains("WARNING"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );

    // A tarball that doesn't match the mirror's sha256: named, both hashes shown, nothing unpacked.
    let tarball = m
        .dir
        .path()
        .join("v3.20/releases/x86_64/alpine-minirootfs-3.20.3-x86_64.tar.gz");
    let mut data = std::fs::read(&tarball).expect("read tarball");
    data.extend_from_slice(b"tampered");
    std::fs::write(&tarball, data).expect("tamper");
    std::fs::write(&def, alpine_def(m.port, Some(&m.armored_key))).expect("write def");
    let fresh = tmp.path().join("fresh-sources");
    let t3 = tmp.path().join("t3");
    let r = Command::new(BIN)
        .args([
            "build-dir",
            &def.to_string_lossy(),
            &t3.to_string_lossy(),
            "--sources-dir",
            &fresh.to_string_lossy(),
        ])
        .output()
        .expect("run");
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success()
            && e.contains("sha256 mismatch")
            && e.contains("alpine-minirootfs-3.20.3-x86_64.tar.gz"),
        "{e}"
    );
    assert!(!t3.join("etc/alpine-release").exists());
    let _: PathBuf = t3;
}

fn summary_line<'a>(stderr: &'a str, stage: &str) -> &'a str {
    stderr
        .lines()
        .find(|l| l.trim_start().starts_with(stage))
        .unwrap_or("")
}

#[test]
fn the_step_cache_skips_unchanged_stages_and_rebuilds_changed_ones() {
    if !require_root("the_step_cache_skips_unchanged_stages") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = tmp.path().join("first");
    let r = build(
        &["build-lxc", BUSYBOX_DEF, &first.to_string_lossy()],
        tmp.path(),
        "1790000000",
    );
    let e = String::from_utf8_lossy(&r.stderr).into_owned();
    assert!(r.status.success(), "{e}");
    assert!(summary_line(&e, "source").contains("built"), "{e}");
    // unchanged: everything from the cache, outputs identical
    let again = tmp.path().join("again");
    let r = build(
        &["build-lxc", BUSYBOX_DEF, &again.to_string_lossy()],
        tmp.path(),
        "1790000000",
    );
    let e = String::from_utf8_lossy(&r.stderr).into_owned();
    assert!(r.status.success(), "{e}");
    for stage in ["source", "packages", "files", "pack"] {
        assert!(summary_line(&e, stage).contains("cached"), "{stage}: {e}");
    }
    assert_eq!(
        sha256(&first.join("rootfs.tar.xz")),
        sha256(&again.join("rootfs.tar.xz"))
    );
    // a change in a later stage (a generator's content) reuses the earlier ones
    let later = tmp.path().join("later");
    let r = build(
        &[
            "build-lxc",
            BUSYBOX_DEF,
            &later.to_string_lossy(),
            "-o",
            "files.3.content=changed",
        ],
        tmp.path(),
        "1790000000",
    );
    let e = String::from_utf8_lossy(&r.stderr).into_owned();
    assert!(r.status.success(), "{e}");
    assert!(
        summary_line(&e, "packages").contains("cached")
            && summary_line(&e, "files").contains("built"),
        "{e}"
    );
    assert_eq!(
        tar_cat(&later.join("rootfs.tar.xz"), "./etc/motd"),
        "changed\n"
    );
    // a change in an early stage (a post-unpack action) rebuilds from there
    let early = tmp.path().join("early");
    let r = build(
        &[
            "build-lxc",
            BUSYBOX_DEF,
            &early.to_string_lossy(),
            "-o",
            "actions.0.action=#!/bin/sh\ntouch /root/changed",
        ],
        tmp.path(),
        "1790000000",
    );
    let e = String::from_utf8_lossy(&r.stderr).into_owned();
    assert!(r.status.success(), "{e}");
    assert!(
        summary_line(&e, "source").contains("cached")
            && summary_line(&e, "packages").contains("built"),
        "{e}"
    );
}

#[test]
fn real_lxc_creates_a_container_from_our_lxc_image() {
    if !require_root("real_lxc_creates_a_container_from_our_lxc_image") {
        return;
    }
    if !warren_testutil::require_installed(
        "/usr/share/lxc/templates/lxc-local",
        "LXC",
        "apt-get install lxc",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("img");
    let r = build(
        &["build-lxc", BUSYBOX_DEF, &out.to_string_lossy()],
        tmp.path(),
        "1790000000",
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let lxcpath = tmp.path().join("lxc");
    std::fs::create_dir_all(&lxcpath).expect("lxcpath");
    let conf = tmp.path().join("net.conf");
    std::fs::write(&conf, "lxc.net.0.type = empty\n").expect("conf");
    let name = unique_name("rl");
    let r = Command::new("lxc-create")
        .arg("-P")
        .arg(&lxcpath)
        .args(["-n", &name, "-f"])
        .arg(&conf)
        .args(["-t", "local", "--", "--metadata"])
        .arg(out.join("meta.tar.xz"))
        .arg("--fstree")
        .arg(out.join("rootfs.tar.xz"))
        .output()
        .expect("lxc-create");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    let root = lxcpath.join(&name).join("rootfs");
    let hostname = std::fs::read_to_string(root.join("etc/hostname")).unwrap_or_default();
    let config = std::fs::read_to_string(lxcpath.join(&name).join("config")).unwrap_or_default();
    let _ = Command::new("lxc-destroy")
        .arg("-P")
        .arg(&lxcpath)
        .args(["-n", &name])
        .output();
    assert!(r.status.success(), "{text}");
    assert!(
        text.contains("BusyBox 1.35"),
        "the create message is shown: {text}"
    );
    assert_eq!(
        hostname,
        format!("{name}\n"),
        "LXC_NAME replaced in the image's templates"
    );
    assert!(
        config.contains("lxc.arch = linux64")
            && config.contains("/usr/share/lxc/config/common.conf"),
        "{config}"
    );
}

#[test]
fn pack_lxc_and_pack_incus_finish_a_build_dir_rootfs_without_changing_it() {
    if !require_root("pack_lxc_and_pack_incus") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let rootfs = tmp.path().join("rootfs");
    let r = build(
        &["build-dir", BUSYBOX_DEF, &rootfs.to_string_lossy()],
        tmp.path(),
        "1790000000",
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let lxc = tmp.path().join("lxc");
    let r = build(
        &[
            "pack-lxc",
            BUSYBOX_DEF,
            &rootfs.to_string_lossy(),
            &lxc.to_string_lossy(),
        ],
        tmp.path(),
        "1790000000",
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(
        tar_cat(&lxc.join("rootfs.tar.xz"), "./etc/hostname"),
        "LXC_NAME\n"
    );
    assert!(tar_cat(&lxc.join("rootfs.tar.xz"), "./root/post-files").starts_with("busybox-"));
    assert!(
        !rootfs.join("root/post-files").exists(),
        "pack-lxc worked on an overlay, the rootfs is unchanged"
    );
    let incus = tmp.path().join("incus");
    let r = build(
        &[
            "pack-incus",
            BUSYBOX_DEF,
            &rootfs.to_string_lossy(),
            &incus.to_string_lossy(),
            "--type",
            "unified",
            "--compression",
            "zstd",
        ],
        tmp.path(),
        "1790000000",
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let unified: Vec<_> = std::fs::read_dir(&incus)
        .expect("outputs")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n != "image.json"))
        .collect();
    assert_eq!(unified.len(), 1, "{unified:?}");
    let name = unified[0]
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(
        name.starts_with("busybox-1.35-x86_64-default-") && name.ends_with(".tar.zst"),
        "{name}"
    );
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(&unified[0])
        .output()
        .expect("tar");
    let listing = String::from_utf8_lossy(&listing.stdout);
    for entry in [
        "metadata.yaml",
        "templates/hostname.tpl",
        "rootfs/bin/busybox",
        "rootfs/etc/hostname",
    ] {
        assert!(
            listing.lines().any(|l| l == entry),
            "{entry} missing from the unified tarball"
        );
    }
    assert_eq!(
        tar_cat(&unified[0], "rootfs/etc/hostname"),
        "distrobuilder\n",
        "Incus renders hostname.tpl at create"
    );
}
