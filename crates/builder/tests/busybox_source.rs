//! The `busybox` downloader with `url`, as distrobuilder does it: busybox-<release>.tar.bz2 from the
//! mirror (here Debian's busybox source, served on 127.0.0.1), its sha256 checked, compiled static,
//! and the applets linked.

use std::path::PathBuf;
use std::process::Command;
use warren_testutil::{require_root, HttpDir};

const BIN: &str = env!("CARGO_BIN_EXE_warren-build");
const RELEASE: &str = "1.35.0";

/// Debian's busybox source tarball, fetched once from Debian's mirror.
fn source_tarball() -> PathBuf {
    let dir = PathBuf::from("/var/tmp/warren-fixtures/busybox-src");
    std::fs::create_dir_all(&dir).expect("fixture dir");
    let file = dir.join(format!("busybox-{RELEASE}.tar.bz2"));
    if !file.exists() {
        let url = format!(
            "http://deb.debian.org/debian/pool/main/b/busybox/busybox_{RELEASE}.orig.tar.bz2"
        );
        let part = dir.join("download.part");
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])",
                &url,
            ])
            .arg(&part)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "download {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&part, &file).expect("rename");
    }
    file
}

#[test]
fn busybox_with_url_is_downloaded_verified_and_compiled_static() {
    if !require_root("busybox_with_url_is_downloaded_verified_and_compiled_static") {
        return;
    }
    let tarball = source_tarball();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mirror = tmp.path().join("mirror");
    std::fs::create_dir_all(&mirror).expect("mirror");
    let name = format!("busybox-{RELEASE}.tar.bz2");
    std::fs::copy(&tarball, mirror.join(&name)).expect("copy");
    let sum = Command::new("sha256sum")
        .arg(&name)
        .current_dir(&mirror)
        .output()
        .expect("sha256sum");
    std::fs::write(mirror.join(format!("{name}.sha256")), &sum.stdout).expect("sha256");
    let server = HttpDir::serve(&mirror);
    let port = server.port;
    let def = tmp.path().join("busybox.yaml");
    std::fs::write(
        &def,
        format!(
            "image:\n  distribution: busybox\n  release: {RELEASE}\nsource:\n  downloader: busybox\n  url: http://127.0.0.1:{port}/\n\
             packages:\n  custom_manager:\n    install: {{cmd: \"true\"}}\n    remove: {{cmd: \"true\"}}\n    refresh: {{cmd: \"true\"}}\n    update: {{cmd: \"true\"}}\n    clean: {{cmd: \"true\"}}\n"
        ),
    )
    .expect("definition");
    let rootfs = tmp.path().join("rootfs");
    // plain HTTP without keys: only with --insecure (its checksum comes from the same server)
    let out = Command::new(BIN)
        .args([
            "build-dir",
            &def.to_string_lossy(),
            &rootfs.to_string_lossy(),
            "--no-cache",
            "--insecure",
        ])
        .arg("--sources-dir")
        .arg(tmp.path().join("sources"))
        .output()
        .expect("warren-build");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = Command::new("file")
        .arg(rootfs.join("bin/busybox"))
        .output()
        .expect("file");
    assert!(
        String::from_utf8_lossy(&file.stdout).contains("statically linked"),
        "{}",
        String::from_utf8_lossy(&file.stdout)
    );
    let echo = Command::new("chroot")
        .arg(&rootfs)
        .args([
            "/bin/sh",
            "-c",
            "echo compiled $(busybox | head -1 | cut -d' ' -f2)",
        ])
        .output()
        .expect("chroot");
    assert_eq!(
        String::from_utf8_lossy(&echo.stdout).trim(),
        format!("compiled v{RELEASE}")
    );
}
