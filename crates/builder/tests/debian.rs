//! A Debian bookworm minbase image built with debootstrap from Debian's mirror: both outputs, the
//! systemd generator in place, and the seed's systemd story end to end: started privileged by
//! warren-lxc with /sys read-write on a `warren-lxc net` bridge, udev masked, systemd-networkd
//! gets an IPv4 (distrobuilder 3.2 + LXC 5.0.2 leave eth0 "pending" in exactly this case), and
//! with the generator's drop-in cancelled it stays pending, so the test sees the bug it guards.

use std::path::{Path, PathBuf};
use std::process::Command;
use warren_testutil::{require_root, unique_name, wait_until, Lxc, LxcNet};

const BIN: &str = env!("CARGO_BIN_EXE_warren-build");
const LXC_BIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/debug/warren-lxc");
const DEF: &str = include_str!("debian-bookworm-minbase.yaml");
const GENERATOR: &str = include_str!("../src/systemd-generator.sh");

/// The image, built once per definition and generator (cached by their hash across runs, shared
/// by parallel tests through a lock).
fn debian_image() -> PathBuf {
    use sha2::{Digest, Sha256};
    let key = hex::encode(Sha256::digest(format!("v1\n{DEF}\n{GENERATOR}")));
    let base = PathBuf::from("/var/tmp/warren-fixtures");
    std::fs::create_dir_all(&base).expect("fixture dir");
    let dir = base.join(format!("wb-debian-{}", &key[..16]));
    let lock = std::fs::File::create(base.join("wb-debian.lock")).expect("lock file");
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).expect("flock");
    if dir.join("done").exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let def = base.join(format!("wb-debian-{}.yaml", &key[..16]));
    std::fs::write(&def, DEF).expect("write definition");
    let out = Command::new(BIN)
        .args([
            "build-all",
            &def.to_string_lossy(),
            &dir.to_string_lossy(),
            "--compression",
            "zstd",
            "--no-cache",
        ])
        .env("SOURCE_DATE_EPOCH", "1790000000")
        .output()
        .expect("warren-build");
    assert!(
        out.status.success(),
        "building the Debian image failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.join("done"), "").expect("mark");
    dir
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
        "{member}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn debian_bookworm_builds_both_outputs_with_the_systemd_generator() {
    if !require_root("debian_bookworm_builds_both_outputs") {
        return;
    }
    let img = debian_image();
    let rootfs = img.join("rootfs.tar.zst");
    assert_eq!(
        tar_cat(&rootfs, "./etc/systemd/system-generators/lxc"),
        GENERATOR
    );
    assert_eq!(tar_cat(&rootfs, "./etc/hostname"), "LXC_NAME\n");
    assert!(tar_cat(&rootfs, "./root/post-update.txt").contains("post-update ran"));
    assert!(tar_cat(&rootfs, "./etc/apt/sources.list").contains("bookworm-security"));
    assert!(tar_cat(&img.join("meta.tar.xz"), "config.1").contains("debian.common.conf"));
    let meta = tar_cat(&img.join("incus.tar.zst"), "metadata.yaml");
    assert!(
        meta.contains("description: \"Debian bookworm amd64 (minbase anchor)\""),
        "{meta}"
    );
    let sq = Command::new("unsquashfs")
        .arg("-cat")
        .arg(img.join("rootfs.squashfs"))
        .arg("etc/systemd/system-generators/lxc")
        .output()
        .expect("unsquashfs");
    assert_eq!(String::from_utf8_lossy(&sq.stdout), GENERATOR);
    // the build host's name servers stay out of the image
    let listing = Command::new("tar")
        .arg("-tvf")
        .arg(&rootfs)
        .arg("./etc/resolv.conf")
        .output()
        .expect("tar");
    assert!(String::from_utf8_lossy(&listing.stdout)
        .contains("-> /run/systemd/resolve/stub-resolv.conf"));
}

/// Creates a container from the image on the bridge, /sys read-write, udev masked.
fn create(lxc: &Lxc, img: &Path, net: &LxcNet, name: &str, extra: impl FnOnce(&Path)) {
    let conf = lxc.lxcpath().join(format!("{name}.conf"));
    std::fs::write(
        &conf,
        format!("lxc.net.0.type = veth\nlxc.net.0.link = {}\nlxc.net.0.flags = up\nlxc.net.0.hwaddr = 00:16:3e:xx:xx:xx\n", net.bridge),
    )
    .expect("config");
    let out = lxc
        .cmd("create")
        .args(["-n", name, "-f"])
        .arg(&conf)
        .args(["-t", "local", "--", "--metadata"])
        .arg(img.join("meta.tar.xz"))
        .arg("--fstree")
        .arg(img.join("rootfs.tar.zst"))
        .output()
        .expect("create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = lxc.lxcpath().join(name);
    let mut config = std::fs::read_to_string(dir.join("config")).expect("read config");
    config.push_str(
        "lxc.mount.auto = proc:mixed sys:rw cgroup:mixed\nlxc.signal.halt = SIGRTMIN+3\n",
    );
    std::fs::write(dir.join("config"), config).expect("write config");
    let root = dir.join("rootfs");
    for unit in [
        "systemd-udevd.service",
        "systemd-udevd-control.socket",
        "systemd-udevd-kernel.socket",
        "systemd-udev-trigger.service",
    ] {
        let link = root.join("etc/systemd/system").join(unit);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/null", link).expect("mask udev");
    }
    extra(&root);
}

fn ipv4(lxc: &Lxc, name: &str) -> String {
    let out = lxc.run(
        "attach",
        &[
            "-n",
            name,
            "--",
            "sh",
            "-c",
            "ip -4 -o addr show eth0 | grep -o 'inet [0-9.]*'",
        ],
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn systemd_networkd_gets_an_ipv4_with_sys_rw_and_no_udev_on_a_warren_lxc_net_bridge() {
    if !require_root("systemd_networkd_gets_an_ipv4") {
        return;
    }
    let img = debian_image();
    let net = LxcNet::new(LXC_BIN);
    let out = net.run("start");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lxc = Lxc::new(LXC_BIN);

    let name = unique_name("wbd");
    create(&lxc, &img, &net, &name, |_| {});
    lxc.ok("start", &["-n", &name]);
    let mut addr = String::new();
    wait_until(60, || {
        addr = ipv4(&lxc, &name);
        !addr.is_empty()
    });
    assert!(
        addr.starts_with(&format!("inet {}.", net.subnet)),
        "no IPv4 from networkd: {addr:?}"
    );
    let sys = lxc.ok("attach", &["-n", &name, "--", "sh", "-c", "grep ' /sys ' /proc/self/mountinfo | head -1; test -e /run/systemd/system/systemd-networkd.service.d/zzz-lxc-ropath.conf && echo drop-in"]);
    assert!(sys.contains(" rw") && sys.contains("drop-in"), "{sys}");
    let _ = lxc.run("stop", &["-n", &name, "-k"]);

    // Control: the same container with the generator's drop-in cancelled stays pending.
    let control = unique_name("wbc");
    create(&lxc, &img, &net, &control, |root| {
        let d = root.join("etc/systemd/system/systemd-networkd.service.d");
        std::fs::create_dir_all(&d).expect("drop-in dir");
        std::fs::write(
            d.join("zzzz-cancel.conf"),
            "[Service]\nBindReadOnlyPaths=\n",
        )
        .expect("cancel");
    });
    lxc.ok("start", &["-n", &control]);
    let got = wait_until(15, || !ipv4(&lxc, &control).is_empty());
    let state = lxc.run(
        "attach",
        &[
            "-n",
            &control,
            "--",
            "networkctl",
            "list",
            "--no-legend",
            "--no-pager",
        ],
    );
    assert!(!got, "the control got an address: is udev really masked?");
    assert!(
        String::from_utf8_lossy(&state.stdout).contains("pending"),
        "{}",
        String::from_utf8_lossy(&state.stdout)
    );
    let _ = lxc.run("stop", &["-n", &control, "-k"]);
}

#[test]
fn lxc_ci_debian_definition_builds_for_bookworm() {
    if !require_root("lxc_ci_debian_definition_builds_for_bookworm") {
        return;
    }
    let def = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/anchors/lxc-ci-defs/debian.yaml"
    ));
    if !def.is_file() {
        eprintln!(
            "skipped: {} is not here (the shared anchors hold lxc-ci's definitions)",
            def.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    // as lxc-ci's build-distro passes them
    let r = Command::new(BIN)
        .args([
            "build-all",
            &def.to_string_lossy(),
            &out.to_string_lossy(),
            "--compression",
            "zstd",
            "--no-cache",
        ])
        .args([
            "-o",
            "image.release=bookworm",
            "-o",
            "image.architecture=x86_64",
            "-o",
            "image.variant=default",
        ])
        .arg("--sources-dir")
        .arg(tmp.path().join("sources"))
        .env("SOURCE_DATE_EPOCH", "1790000000")
        .output()
        .expect("warren-build");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let rootfs = out.join("rootfs.tar.zst");
    assert_eq!(tar_cat(&rootfs, "./etc/machine-id"), "uninitialized\n");
    assert!(tar_cat(&rootfs, "./etc/systemd/network/eth0.network").contains("Name=eth0"));
    assert_eq!(
        tar_cat(&rootfs, "./etc/systemd/system-generators/lxc"),
        GENERATOR
    );
    assert!(tar_cat(&out.join("meta.tar.xz"), "config").contains("lxc.arch = linux64"));
    assert!(out.join("rootfs.squashfs").is_file() && out.join("incus.tar.zst").is_file());
}
